package transports_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/switchyard-go/switchyard/transports"
)

func TestFieldErrors(t *testing.T) {
	a := transports.FieldErrorf("maxlen", "must not be negative, got %d", -1)
	b := &transports.FieldError{Key: "tls.key_file", Reason: "required with tls.cert_file"}
	other := errors.New("dial failed")
	for _, tc := range []struct {
		name   string
		err    error
		fields []*transports.FieldError
		only   bool
	}{
		{"nil", nil, nil, false},
		{"one", a, []*transports.FieldError{a}, true},
		{"joined", errors.Join(a, b), []*transports.FieldError{a, b}, true},
		{"wrapped", fmt.Errorf("config: %w", errors.Join(a, b)), []*transports.FieldError{a, b}, true},
		{"mixed", errors.Join(a, other), []*transports.FieldError{a}, false},
		{"none", other, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields, only := transports.FieldErrors(tc.err)
			assert.Equal(t, tc.fields, fields)
			assert.Equal(t, tc.only, only)
		})
	}
	assert.Equal(t, "maxlen: must not be negative, got -1", a.Error())
}
