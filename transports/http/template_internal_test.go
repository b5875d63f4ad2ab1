package httptransport

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzURLTemplate feeds arbitrary templates, topics and event types to the
// config check (with and without allowed_hosts) and to the expansion: none
// panics, no expansion changes the scheme, the userinfo or the host of the
// template, and no URL made has a path segment a server reads as . or ..
// (the check below is independent of hasDotSegment: it decodes with
// net/url, as a server would).
func FuzzURLTemplate(f *testing.F) {
	for _, seed := range [][3]string{
		{"http://a%41b@127.0.0.1{topic}/e", ":8080", "t"},
		{"http://us%65r:p%40ss@hub{topic}", "x", "t"},
		{"http://h/t/{topic}/e?type={event_type}", "..", "%2E%2e"},
		{"http://h/t/.{topic}/{event_type}", ".", "a/.."},
		{"https://u:p@h:8443/{topic}#{event_type}", "%252e%252E", "?#"},
		{"HTTP://h/{topic}", `..\x`, ""},
		{"http://[::1]:1/{event_type}{topic}", ".", "."},
		{"http://h/%2e{topic}", "%2e", "t"},
		{"http://h:{topic}/", "80", "t"},
	} {
		f.Add(seed[0], seed[1], seed[2], "h")
	}
	f.Fuzz(func(t *testing.T, tmpl, topic, eventType, allowed string) {
		for _, hosts := range [][]string{nil, {allowed}, {"127.0.0.1", "*.example.com:443", "[::1]:1"}} {
			cfg := Config{URL: tmpl, AllowedHosts: hosts}
			_ = cfg.Validate()
		}
		tp, err := parseTemplate(tmpl)
		if err != nil {
			return
		}
		// The Publisher parses the template once its userinfo is gone.
		stripped, _ := stripUserinfo(tmpl)
		sp, err := parseTemplate(stripped)
		require.NoError(t, err, "a template taken without its userinfo")
		for _, p := range []*urlTemplate{tp, sp} {
			fixed, err := url.Parse(p.render("x", "x"))
			require.NoError(t, err)
			if made, err := url.Parse(p.render(topic, eventType)); err == nil {
				requireSameAuthority(t, fixed, made)
			}
			u, err := p.url(topic, eventType)
			if err != nil {
				continue
			}
			requireSameAuthority(t, fixed, u)
			for seg := range strings.SplitSeq(u.EscapedPath(), "/") {
				requireNoDotSegment(t, seg)
			}
		}
	})
}

func requireSameAuthority(t *testing.T, want, got *url.URL) {
	t.Helper()
	require.Equal(t, want.Scheme, got.Scheme)
	require.Equal(t, want.User.String(), got.User.String())
	require.Equal(t, want.Host, got.Host)
}

// requireNoDotSegment fails when seg, or what url.PathUnescape makes of it
// once or more, split on / or \, has a . or .. piece.
func requireNoDotSegment(t *testing.T, seg string) {
	t.Helper()
	for {
		for _, piece := range strings.FieldsFunc(seg, func(r rune) bool { return r == '/' || r == '\\' }) {
			require.NotContains(t, []string{".", ".."}, piece, "segment %q", seg)
		}
		decoded, err := url.PathUnescape(seg)
		if err != nil || decoded == seg {
			return
		}
		seg = decoded
	}
}
