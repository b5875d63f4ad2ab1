package bus

import (
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
)

// scrub returns err with the running configuration's secrets removed from
// its message (see scrubError), once: an error it returned comes back as
// it is.
func (b *Bus) scrub(err error) error {
	if _, done := err.(*redactedError); done || err == nil {
		return err
	}
	return scrubError(err, b.secrets.Load())
}

// scrubLogger removes the running configuration's secrets from the errors
// and string fields of what is logged. Trace records, two per event from
// the router, keep their strings, so a successful publish pays nothing.
type scrubLogger struct {
	watermill.LoggerAdapter
	secrets *atomic.Pointer[secretSet]
}

func (l *scrubLogger) Error(msg string, err error, fields watermill.LogFields) {
	s := l.secrets.Load()
	if err != nil {
		err = scrubError(err, s)
	}
	l.LoggerAdapter.Error(msg, err, scrubFields(fields, s, true))
}

func (l *scrubLogger) Info(msg string, fields watermill.LogFields) {
	l.LoggerAdapter.Info(msg, scrubFields(fields, l.secrets.Load(), true))
}

func (l *scrubLogger) Debug(msg string, fields watermill.LogFields) {
	l.LoggerAdapter.Debug(msg, scrubFields(fields, l.secrets.Load(), true))
}

func (l *scrubLogger) Trace(msg string, fields watermill.LogFields) {
	l.LoggerAdapter.Trace(msg, scrubFields(fields, l.secrets.Load(), false))
}

func (l *scrubLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return &scrubLogger{LoggerAdapter: l.LoggerAdapter.With(scrubFields(fields, l.secrets.Load(), true)), secrets: l.secrets}
}

// scrubFields returns fields with their errors scrubbed, and with strs
// their strings too; fields itself when nothing changes.
func scrubFields(fields watermill.LogFields, s *secretSet, strs bool) watermill.LogFields {
	var out watermill.LogFields
	for k, v := range fields {
		var scrubbed any
		switch x := v.(type) {
		case error:
			scrubbed = scrubError(x, s)
		case string:
			if !strs {
				continue
			}
			if y := s.scrub(redactString(x)); y != x {
				scrubbed = y
			}
		}
		if scrubbed == nil {
			continue
		}
		if out == nil {
			out = fields.Copy()
		}
		out[k] = scrubbed
	}
	if out == nil {
		return fields
	}
	return out
}

var _ watermill.LoggerAdapter = (*scrubLogger)(nil)
