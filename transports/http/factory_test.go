package httptransport_test

import (
	"net/http"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/go-viper/mapstructure/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports"
	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// decodeFrom stands in for the bus's koanf decoding of a transport section:
// koanf tags, durations from strings, unknown keys an error naming them.
func decodeFrom(section map[string]any) func(any) error {
	return func(target any) error {
		d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			TagName:          "koanf",
			ErrorUnused:      true,
			WeaklyTypedInput: true,
			DecodeHook:       mapstructure.StringToTimeDurationHookFunc(),
			Result:           target,
		})
		if err != nil {
			return err
		}
		return d.Decode(section)
	}
}

func build(t *testing.T, section map[string]any) (transports.Transport, error) {
	t.Helper()
	r := transports.NewRegistry()
	r.Register(httptransport.Name, httptransport.Factory)
	factory, err := r.Lookup("http")
	require.NoError(t, err)
	return factory(transports.Settings{
		Name:       "http",
		Decode:     decodeFrom(section),
		Logger:     watermill.NopLogger{},
		Registerer: prometheus.NewRegistry(),
	})
}

func TestRegisteredByInit(t *testing.T) {
	require.Contains(t, transports.Names(), httptransport.Name)
}

func TestFactoryBuildsAPublisher(t *testing.T) {
	type request struct{ path, auth string }
	requests := make(chan request, 1)
	srv := newServer(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		requests <- request{r.URL.Path, r.Header.Get("Authorization")}
		w.WriteHeader(http.StatusNoContent)
	})
	tr, err := build(t, map[string]any{
		"url":     srv.URL + "/api/v1/events/{topic}",
		"timeout": "2s",
		"format":  "cloudevents-structured",
		"headers": map[string]any{"authorization": "Bearer t"},
		"tls":     map[string]any{"insecure_skip_verify": false},
	})
	require.NoError(t, err)
	require.NotNil(t, tr.Publisher)
	require.Nil(t, tr.Subscriber, "a Receiver is mounted in code, not configured")
	require.NoError(t, tr.Publisher.Publish("events:chat", newMessage("m-1")))
	require.Equal(t, request{"/api/v1/events/events:chat", "Bearer t"}, <-requests)
	require.NoError(t, tr.Publisher.Close())
}

func TestFactoryConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		section map[string]any
		want    string
	}{
		{"unknown key", map[string]any{"url": "http://h/", "timout": "1s"}, "timout"},
		{"no url", map[string]any{}, "url: must be set"},
		{"bad format", map[string]any{"url": "http://h/", "format": "xml"}, "format"},
		{"negative retries backoff", map[string]any{"url": "http://h/", "retry_backoff": "-1s"}, "retry_backoff: must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := build(t, tc.section)
			require.ErrorContains(t, err, "httptransport: config: ")
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, tr.Publisher)
		})
	}
}
