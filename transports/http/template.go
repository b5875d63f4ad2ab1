package httptransport

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// urlTemplate is a parsed Config.URL, whose placeholders {topic} and
// {event_type} are escaped for the part of the URL they are in.
type urlTemplate struct {
	// path is the template up to its first '?' or '#', query the rest.
	path, query            string
	hasTopic, hasEventType bool
	// base is the template with placeholders filled: every URL made from
	// the template keeps its scheme, userinfo and host.
	base *url.URL
	// urls caches the URL of the first maxCachedURLs topics (and event
	// types, with {event_type}): making one costs a dozen allocations.
	urls   sync.Map // [2]string → *url.URL
	cached atomic.Int32
}

const maxCachedURLs = 4096

// placeholder matches from a '{' to the next '}', or to the end.
var placeholder = regexp.MustCompile(`\{[^}]*\}?`)

func parseTemplate(s string) (*urlTemplate, error) {
	// Errors give positions, never the text: a URL holds secrets.
	for _, m := range placeholder.FindAllStringIndex(s, -1) {
		switch p := s[m[0]:m[1]]; {
		case !strings.HasSuffix(p, "}"):
			return nil, fmt.Errorf("unclosed { at byte %d", m[0])
		case p != "{topic}" && p != "{event_type}":
			return nil, fmt.Errorf("unknown placeholder at byte %d: use {topic} or {event_type}", m[0])
		}
	}
	t := &urlTemplate{path: s, hasTopic: strings.Contains(s, "{topic}"), hasEventType: strings.Contains(s, "{event_type}")}
	if q := strings.IndexAny(s, "?#"); q >= 0 {
		t.path, t.query = s[:q], s[q:]
	}
	// The authority is judged on the template's own text, before any
	// escape in it is decoded: a placeholder there would let a topic pick
	// the host or the port, which the allow-list and the address check are
	// about.
	authorityEnd := authorityEnd(s)
	if authorityEnd >= 0 && strings.IndexByte(s[:authorityEnd], '{') >= 0 {
		return nil, errors.New("placeholders may not stand in the scheme, the userinfo, the host or the port")
	}
	u, err := url.Parse(t.render("x", "x"))
	if err != nil {
		return nil, urlSyntaxError(s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("scheme must be http or https")
	}
	if u.Host == "" || authorityEnd < 0 {
		return nil, errors.New("no host: the URL must start with http:// or https:// and a host")
	}
	if hasDotSegment(u.EscapedPath()) {
		return nil, errDotSegmentInTemplate
	}
	t.base = u
	return t, nil
}

// urlSyntaxError says what url.Parse found wrong with s without quoting
// any of it: a *url.Error holds the whole URL, and some of its causes the
// offending part (an escape, a port), which may be a piece of a password.
func urlSyntaxError(s string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var escapeErr url.EscapeError
	var hostErr url.InvalidHostError
	switch {
	case errors.As(err, &escapeErr):
		if i := badEscapeAt(s); i >= 0 {
			return fmt.Errorf("invalid %%-escape at byte %d", i)
		}
		return errors.New("invalid %-escape")
	case errors.As(err, &hostErr):
		return errors.New("invalid character in the host")
	}
	switch msg := err.Error(); {
	case strings.HasPrefix(msg, "invalid port"):
		return errors.New("invalid port after the host")
	case msg == "missing protocol scheme", msg == "first path segment in URL cannot contain colon",
		msg == "net/url: invalid control character in URL", msg == "net/url: invalid userinfo",
		msg == "missing ']' in host", msg == "invalid IPv6 host":
		return errors.New(strings.TrimPrefix(msg, "net/url: "))
	}
	return errors.New("does not parse as a URL")
}

// badEscapeAt returns the position of the first '%' of s that does not
// start a %XX escape, or -1.
func badEscapeAt(s string) int {
	for i := 0; i < len(s); i++ {
		if _, ok := unhex(s, i); s[i] == '%' && !ok {
			return i
		}
	}
	return -1
}

// render returns the URL for topic and eventType.
func (t *urlTemplate) render(topic, eventType string) string {
	// Escaped, neither value holds a brace that a placeholder could match.
	expand := func(s string, escape func(string) string) string {
		return strings.ReplaceAll(strings.ReplaceAll(s, "{topic}", escape(topic)), "{event_type}", escape(eventType))
	}
	return expand(t.path, url.PathEscape) + expand(t.query, url.QueryEscape)
}

// authorityEnd returns where the authority (userinfo, host and port) of
// the template s ends, as url.Parse reads it: at the first '/', '?' or '#'
// after "http://" or "https://". It is -1 when s starts with neither.
func authorityEnd(s string) int {
	for _, prefix := range [...]string{"http://", "https://"} {
		if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
			if i := strings.IndexAny(s[len(prefix):], "/?#"); i >= 0 {
				return len(prefix) + i
			}
			return len(s)
		}
	}
	return -1
}

var (
	errDotSegmentInTemplate = errors.New("the path has a . or .. segment, which a server reads as a move up the path")
	errDotSegment           = errors.New("the topic or the event type makes a . or .. path segment, " +
		"which a server reads as a move up the path (its percent-encoded forms too)")
)

// hasDotSegment reports whether a server could read a segment of the
// escaped path p as "." or "..": as it is or percent-decoded once or more,
// split on '/' or '\' (some servers decode before they split).
func hasDotSegment(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		for {
			pieces := strings.FieldsFunc(seg, func(r rune) bool { return r == '/' || r == '\\' })
			if slices.Contains(pieces, ".") || slices.Contains(pieces, "..") {
				return true
			}
			decoded, changed := percentDecode(seg)
			if !changed {
				break
			}
			seg = decoded
		}
	}
	return false
}

// url returns the URL for topic and eventType, or why it may not be used.
func (t *urlTemplate) url(topic, eventType string) (*url.URL, error) {
	key := [2]string{topic}
	if t.hasEventType {
		key[1] = eventType
	}
	if u, ok := t.urls.Load(key); ok {
		return u.(*url.URL), nil
	}
	u, err := url.Parse(t.render(topic, eventType))
	if err != nil {
		// Not err: its text holds the whole URL, query included.
		return nil, errors.New("the URL made for this topic and event type does not parse")
	}
	// Escaping keeps the authority; checked all the same, as allowed_hosts
	// and the address check rest on it.
	if u.Scheme != t.base.Scheme || u.User.String() != t.base.User.String() || u.Host != t.base.Host {
		return nil, errors.New("the URL made for this topic and event type names another scheme, userinfo or host")
	}
	if hasDotSegment(u.EscapedPath()) {
		return nil, errDotSegment
	}
	if t.cached.Add(1) <= maxCachedURLs {
		t.urls.Store(key, u)
	}
	return u, nil
}

// stripUserinfo returns rawURL without its userinfo and, when it had one,
// the Basic Authorization header value http.Client would have made of it.
func stripUserinfo(rawURL string) (stripped, basicAuth string) {
	end := authorityEnd(rawURL)
	start := strings.Index(rawURL, "://") + len("://")
	if end < 0 || strings.LastIndexByte(rawURL[start:end], '@') < 0 {
		return rawURL, ""
	}
	u, err := url.Parse(rawURL[:end])
	if err != nil || u.User == nil {
		return rawURL, ""
	}
	password, _ := u.User.Password()
	at := start + strings.LastIndexByte(rawURL[start:end], '@')
	return rawURL[:start] + rawURL[at+1:], "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+password))
}
