package httptransport

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// urlTemplate is a parsed Config.URL: literal text and the placeholders
// {topic} and {event_type}, each escaped for the part of the URL it is in.
type urlTemplate struct {
	parts []templatePart
	// static is the URL when it has no placeholder.
	static                 string
	hasTopic, hasEventType bool
}

type templatePart struct {
	literal string
	field   templateField // fieldNone for a literal
	inQuery bool
}

type templateField int

const (
	fieldNone templateField = iota
	fieldTopic
	fieldEventType
)

func parseTemplate(s string) (*urlTemplate, error) {
	t := &urlTemplate{}
	rest := s
	inQuery := false
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			t.parts = append(t.parts, templatePart{literal: rest})
			break
		}
		literal := rest[:open]
		if strings.ContainsAny(literal, "?#") {
			inQuery = true
		}
		// Errors give positions, never the text: a URL holds secrets.
		at := len(s) - len(rest) + open
		closeAt := strings.IndexByte(rest[open:], '}')
		if closeAt < 0 {
			return nil, fmt.Errorf("unclosed { at byte %d", at)
		}
		name := rest[open+1 : open+closeAt]
		var f templateField
		switch name {
		case "topic":
			f = fieldTopic
		case "event_type":
			f = fieldEventType
		default:
			return nil, fmt.Errorf("unknown placeholder at byte %d: use {topic} or {event_type}", at)
		}
		if literal != "" {
			t.parts = append(t.parts, templatePart{literal: literal})
		}
		t.parts = append(t.parts, templatePart{field: f, inQuery: inQuery})
		rest = rest[open+closeAt+1:]
	}
	// The scheme and the host must be fixed: the allow-list and the address
	// check are about where requests go, which no topic may change.
	probe := t.render("x", "x")
	u, err := url.Parse(probe)
	if err != nil {
		return nil, urlSyntaxError(s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("scheme must be http or https")
	}
	if u.Host == "" {
		return nil, errors.New("no host")
	}
	authorityEnd := len(u.Scheme) + len("://") + len(u.User.String()) + len(u.Host)
	if u.User != nil {
		authorityEnd++ // '@'
	}
	if i := strings.IndexByte(s, '{'); i >= 0 && i < authorityEnd {
		return nil, errors.New("placeholders may not stand in the scheme or the host")
	}
	for _, p := range t.parts {
		t.hasTopic = t.hasTopic || p.field == fieldTopic
		t.hasEventType = t.hasEventType || p.field == fieldEventType
	}
	if !t.hasTopic && !t.hasEventType {
		t.static = s
	}
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
		if s[i] == '%' && (i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2])) {
			return i
		}
	}
	return -1
}

func (t *urlTemplate) usesTopic() bool { return t.hasTopic }

// render returns the URL for topic and eventType.
func (t *urlTemplate) render(topic, eventType string) string {
	if t.static != "" {
		return t.static
	}
	var b strings.Builder
	for _, p := range t.parts {
		switch p.field {
		case fieldNone:
			b.WriteString(p.literal)
		case fieldTopic:
			b.WriteString(escape(topic, p.inQuery))
		case fieldEventType:
			b.WriteString(escape(eventType, p.inQuery))
		}
	}
	return b.String()
}

func escape(v string, inQuery bool) string {
	if inQuery {
		return url.QueryEscape(v)
	}
	e := url.PathEscape(v)
	// "." and ".." would move up the path once a server cleans it.
	if e == "." || e == ".." {
		e = strings.ReplaceAll(e, ".", "%2E")
	}
	return e
}

// urlCache keeps the parsed URL of each topic (and event type, when the
// template has {event_type}), for the first maxCachedURLs of them.
type urlCache struct {
	m sync.Map // key → *url.URL
	n atomic.Int32
}

const maxCachedURLs = 4096

func (c *urlCache) get(t *urlTemplate, topic, eventType string) (*url.URL, error) {
	key := topic
	switch {
	case t.static != "":
		key = ""
	case t.hasEventType:
		key = topic + "\x00" + eventType
	}
	if u, ok := c.m.Load(key); ok {
		return u.(*url.URL), nil
	}
	u, err := url.Parse(t.render(topic, eventType))
	if err != nil {
		// Not err: its text holds the whole URL, query included.
		return nil, errors.New("the URL made for this topic and event type does not parse")
	}
	if c.n.Add(1) <= maxCachedURLs {
		c.m.Store(key, u)
	}
	return u, nil
}

// stripUserinfo returns rawURL without its userinfo and, when it had one,
// the Basic Authorization header value http.Client would have made of it.
func stripUserinfo(rawURL string) (stripped, basicAuth string) {
	i := strings.Index(rawURL, "://")
	if i < 0 {
		return rawURL, ""
	}
	rest := rawURL[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return rawURL, ""
	}
	u, err := url.Parse(rawURL[:i+3] + authority)
	if err != nil || u.User == nil {
		return rawURL, ""
	}
	password, _ := u.User.Password()
	basicAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+password))
	return rawURL[:i+3] + authority[at+1:] + rest[end:], basicAuth
}
