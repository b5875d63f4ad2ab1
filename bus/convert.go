package bus

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// valueError is a value that does not fit its field: what the field
// wants, and the value as describe shows it.
type valueError struct{ reason, value string }

func (e *valueError) Error() string { return e.reason + ", got " + e.value }

// decodeHook converts a value for the field it decodes into. Input is
// weakly typed, as environment variables are all strings, but never lossy:
// 12.5 is not an integer, and a bare 100 is not a duration. Other types go
// to mapstructure's weak decoding.
func decodeHook(_, to reflect.Type, data any) (any, error) {
	switch k := to.Kind(); {
	case to == durationType:
		return toDuration(data)
	case k >= reflect.Int && k <= reflect.Uint64:
		return toInteger(to, data)
	case k == reflect.String:
		return toString(data)
	case k == reflect.Bool:
		return toBool(data)
	case k == reflect.Float32 || k == reflect.Float64:
		if f, ok := asFloat(data); ok {
			return f, nil
		}
		return nil, &valueError{"must be a number", describe(data)}
	case k == reflect.Slice && to.Elem().Kind() == reflect.String:
		return toStrings(data)
	case k == reflect.Slice && to.Elem().Kind() != reflect.Uint8:
		if s, ok := data.(string); ok {
			return splitList(s), nil
		}
	case k == reflect.Struct:
		// kindOf, not describe: a value where a section was expected may
		// be a secret that lost its key to bad indentation.
		if _, ok := data.(map[string]any); !ok {
			return nil, errors.New("must be a map of keys, got " + kindOf(data))
		}
	}
	return data, nil
}

func toDuration(raw any) (time.Duration, error) {
	want := `must be a duration such as "100ms"`
	switch x := raw.(type) {
	case time.Duration:
		return x, nil
	case string:
		if d, err := time.ParseDuration(strings.TrimSpace(x)); err == nil {
			return d, nil
		}
		want += ` or "2s"`
	default:
		if f, ok := asFloat(raw); ok {
			if f == 0 {
				return 0, nil
			}
			want = `must be a duration with a unit such as "100ms"`
		}
	}
	return 0, &valueError{want, describe(raw)}
}

func toString(raw any) (string, error) {
	switch x := raw.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	if f, ok := asFloat(raw); ok {
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	}
	return "", &valueError{"must be a string", describe(raw)}
}

func toBool(raw any) (bool, error) {
	switch x := raw.(type) {
	case bool:
		return x, nil
	case string:
		if b, ok := parseBool(x); ok {
			return b, nil
		}
	default:
		if f, ok := asFloat(raw); ok && (f == 0 || f == 1) {
			return f == 1, nil
		}
	}
	return false, &valueError{"must be a boolean (true/false, yes/no, on/off, 1/0)", describe(raw)}
}

// toInteger converts raw for an integer field of type t.
func toInteger(t reflect.Type, raw any) (int64, error) {
	var n int64
	switch x := raw.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case string:
		var err error
		if n, err = strconv.ParseInt(strings.TrimSpace(x), 10, 64); err != nil {
			return 0, &valueError{"must be an integer", describe(raw)}
		}
	default:
		f, ok := asFloat(raw)
		if !ok || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
			return 0, &valueError{"must be an integer", describe(raw)}
		}
		n = int64(f)
	}
	v := reflect.New(t).Elem()
	if v.CanUint() && (n < 0 || v.OverflowUint(uint64(n))) || v.CanInt() && v.OverflowInt(n) {
		return 0, &valueError{"is out of range", describe(raw)}
	}
	return n, nil
}

// toStrings takes a list, or a comma-separated string as an environment
// variable gives it.
func toStrings(raw any) ([]string, error) {
	switch x := raw.(type) {
	case string:
		return splitList(x), nil
	case []any:
		out := make([]string, 0, len(x))
		for i, e := range x {
			s, err := toString(e)
			if err != nil {
				ve := err.(*valueError)
				return nil, &valueError{fmt.Sprintf("element %d %s", i, ve.reason), ve.value}
			}
			out = append(out, s)
		}
		return out, nil
	case []string:
		return slices.Clone(x), nil
	}
	return nil, &valueError{"must be a list of strings", describe(raw)}
}

func splitList(s string) []string {
	out := []string{}
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// asFloat reads a finite number from a number of any type or a string.
func asFloat(raw any) (float64, bool) {
	f := math.NaN()
	switch v := reflect.ValueOf(raw); v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		f = float64(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f = float64(v.Uint())
	case reflect.Float32, reflect.Float64:
		f = v.Float()
	case reflect.String:
		if p, err := strconv.ParseFloat(strings.TrimSpace(v.String()), 64); err == nil {
			f = p
		}
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

// kindOf names what a value is without showing it, as it may be a secret.
func kindOf(raw any) string {
	switch raw.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any, []string:
		return "a list"
	}
	if _, ok := asFloat(raw); ok {
		return "a number"
	}
	return "a value"
}

// describe shows a bad value in an error; the error is redacted.
func describe(raw any) string {
	switch x := raw.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case map[string]any:
		return "a map"
	case []any, []string:
		return "a list"
	}
	return fmt.Sprint(raw)
}
