package httptransport

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// secretAlphabet is what FuzzConfigRedaction makes credentials of: the
// characters that break a URL left unescaped, and markers (upper-case
// letters and é) that nothing the configs print holds but credentials, so
// that a piece with a marker found in an output can only come from one.
const secretAlphabet = "QZJKX/#?% @:é7"

// secretMarkers are the marker bytes: é is 0xC3 0xA9.
const secretMarkers = "QZJKX\xC3\xA9"

func hasMarker(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(secretMarkers, s[i]) >= 0 {
			return true
		}
	}
	return false
}

func secretFrom(b []byte) string {
	alphabet := []rune(secretAlphabet)
	var s strings.Builder
	for _, c := range b {
		s.WriteRune(alphabet[int(c)%len(alphabet)])
	}
	return s.String()
}

// FuzzConfigRedaction builds configs whose URL userinfo password, URL query
// value, proxy password, header value, signing secrets and bearer token are
// fuzzed credentials, raw or escaped, around fuzzed (marker-free) user,
// host and path, and checks that no piece of 3 bytes of a credential with
// a marker in it shows in the configs' String, %v, %+v, %#v or slog
// output, nor in the config check's errors.
func FuzzConfigRedaction(f *testing.F) {
	f.Add("user", []byte{0, 1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 2}, []byte{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, "hub.example.com", "/e/{topic}", false)
	f.Add("", []byte{0, 0, 0}, []byte{1, 1, 1}, "127.0.0.1:8080", "", true)
	f.Add("u", []byte{12, 1, 2, 13}, []byte{6, 0, 1}, "h", "/a@b", false)
	f.Fuzz(func(t *testing.T, user string, pw, tok []byte, host, path string, escape bool) {
		if hasMarker(user + host + path) {
			return
		}
		password, token := secretFrom(pw), secretFrom(tok)
		secrets := []string{password, token}
		userinfo := user + ":" + password
		query := token
		if escape {
			userinfo = url.UserPassword(user, password).String()
			query = url.QueryEscape(token)
			secrets = append(secrets, userinfo, query)
		}
		rawURL := "https://" + userinfo + "@" + host + path + "?token=" + query
		cfg := Config{
			URL:        rawURL,
			Proxy:      "http://" + userinfo + "@" + host,
			Headers:    map[string]string{"Api-Token": password},
			HMACSecret: token,
		}
		rc := ReceiverConfig{BearerToken: password, HMACSecret: token}
		tc := TransportConfig{Config: cfg, Receiver: &ServerConfig{ReceiverConfig: rc, Listen: host}}

		var outputs []string
		for _, v := range []any{cfg, &cfg, rc, tc, &tc} {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
				outputs = append(outputs, fmt.Sprintf(verb, v))
			}
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime})).Info("config", "cfg", v)
			outputs = append(outputs, buf.String())
		}
		for _, err := range []error{cfg.Validate(), tc.Validate()} {
			if err != nil {
				outputs = append(outputs, err.Error())
			}
		}
		if _, err := parseTemplate(rawURL); err != nil {
			outputs = append(outputs, err.Error())
		}
		for _, out := range outputs {
			for _, secret := range secrets {
				for i := 0; i+3 <= len(secret); i++ {
					piece := secret[i : i+3]
					if hasMarker(piece) {
						require.NotContains(t, out, piece, "a piece of %q", secret)
					}
				}
			}
		}
	})
}

// dropTime leaves the time out of slog's output: its digits and Z would
// pass for a piece of a credential.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
