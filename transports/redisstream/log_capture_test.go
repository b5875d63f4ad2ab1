package redisstream_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/require"
)

// captureLogger records what it is given.
type captureLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *captureLogger) add(level, msg string, err error, fields watermill.LogFields) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := level + " " + msg
	if err != nil {
		s += ": " + err.Error()
	}
	for k, v := range fields {
		s += " " + k + "=" + toString(v)
	}
	l.lines = append(l.lines, s)
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return "?"
}

func (l *captureLogger) Error(msg string, err error, fields watermill.LogFields) {
	l.add("ERROR", msg, err, fields)
}
func (l *captureLogger) Info(msg string, fields watermill.LogFields) { l.add("INFO", msg, nil, fields) }
func (l *captureLogger) Debug(msg string, fields watermill.LogFields) {
	l.add("DEBUG", msg, nil, fields)
}
func (l *captureLogger) Trace(msg string, fields watermill.LogFields) {
	l.add("TRACE", msg, nil, fields)
}
func (l *captureLogger) With(watermill.LogFields) watermill.LoggerAdapter {
	return l
}

func (l *captureLogger) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// TestInsecureSkipVerifyIsLogged: a transport that does not check the
// server's certificate says so when it is built, naming itself.
func TestInsecureSkipVerifyIsLogged(t *testing.T) {
	for name, section := range map[string]map[string]any{
		"key": {"url": "rediss://127.0.0.1:1/0", "tls": map[string]any{"insecure_skip_verify": true}},
		"url": {"url": "rediss://127.0.0.1:1/0?skip_verify=true"},
	} {
		t.Run(name, func(t *testing.T) {
			logger := &captureLogger{}
			tr, err := buildTransportLogged(t, section, logger)
			require.NoError(t, err)
			require.NoError(t, tr.Publisher.Close())
			require.Contains(t, logger.text(), "insecure_skip_verify is on")
			require.Contains(t, logger.text(), "transport=redis")
		})
	}
	logger := &captureLogger{}
	tr, err := buildTransportLogged(t, map[string]any{"url": "rediss://127.0.0.1:1/0"}, logger)
	require.NoError(t, err)
	require.NoError(t, tr.Publisher.Close())
	require.NotContains(t, logger.text(), "insecure_skip_verify")
}
