package redisstream

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// parseURL is redis.ParseURL with errors that never quote the URL: net/url's
// and go-redis's quote the part they trip on, which is a piece of the
// password when it holds a character user info must percent-encode.
func parseURL(s string) (*redis.Options, error) {
	u, misplaced, err := checkURL(s)
	if err != nil {
		return nil, err
	}
	o, err := redis.ParseURL(s)
	if err == nil {
		return o, nil
	}
	if misplaced {
		return nil, errMisplacedUserinfo
	}
	// go-redis refused a query option: name it if it is a plain name, as
	// every option go-redis knows is.
	for name, values := range u.Query() {
		one := url.Values{name: values}
		if _, err := redis.ParseURL("redis://localhost/0?" + one.Encode()); err != nil {
			if name != "" && strings.Trim(name, "abcdefghijklmnopqrstuvwxyz_") == "" {
				return nil, fmt.Errorf("query option %s: unknown, or its value is invalid", name)
			}
			return nil, errors.New("a query option is unknown, or its value is invalid")
		}
	}
	return nil, errors.New("the query options are invalid")
}

// errMisplacedUserinfo: a '/', '?' or '#' in the user info ends the host
// early, and the rest of it lands in the path, the query or the fragment.
var errMisplacedUserinfo = errors.New("the user name or password holds a '/', '?' or '#': " +
	"percent-encode it (%2F, %3F, %23), or give the password in the password key")

// checkURL parses s and checks what go-redis would refuse but its query
// options. misplaced is whether an '@' follows the host, as a password
// holding a '/', '?' or '#' leaves; a failure is then put down to that.
func checkURL(s string) (u *url.URL, misplaced bool, err error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "redis" && scheme != "rediss" && scheme != "unix") {
		return nil, false, errors.New("must start with redis://, rediss:// or unix://")
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	misplaced = strings.Contains(tail, "@")
	fail := func(reason string) (*url.URL, bool, error) {
		if misplaced {
			return nil, true, errMisplacedUserinfo
		}
		return nil, false, errors.New(reason)
	}
	if strings.Contains(tail, "#") {
		// go-redis ignores a fragment, with the password's end.
		return fail("has a '#' after the host, which a redis URL does not take: " +
			"percent-encode a '#' of a password as %23")
	}
	userinfo, hostport, hasUser := cutLast(authority, "@")
	if !hasUser {
		hostport = authority
	} else if _, err := url.Parse("redis://" + userinfo + "@host"); err != nil {
		if _, ok := errors.AsType[url.EscapeError](err); ok {
			return nil, misplaced, errors.New("the user name or password has a '%' not followed by two hex digits: " +
				"write a '%' as %25, or give the password in the password key")
		}
		return nil, misplaced, errors.New("the user name or password holds a character that must be percent-encoded " +
			"(a space, a control or non-ASCII character, or one of \"<>[]^`{|}): " +
			"percent-encode it, or give the password in the password key")
	}
	u, err = url.Parse(s)
	if err != nil {
		if _, ok := errors.AsType[url.EscapeError](err); ok {
			return fail("has a '%' not followed by two hex digits: write a '%' as %25")
		}
		if _, ok := errors.AsType[url.InvalidHostError](err); ok {
			return fail("the host holds an invalid character")
		}
		if strings.HasPrefix(hostport, "[") {
			_, hostport, _ = strings.Cut(hostport, "]")
		}
		if _, port, ok := cutLast(hostport, ":"); ok && !digits(port) {
			return fail("the port after the host must be a number")
		}
		return fail("is not a valid URL")
	}
	if _, err := url.ParseQuery(u.RawQuery); err != nil {
		// go-redis drops what does not parse, with no error.
		return fail("has a query that does not parse: percent-encode a '%' as %25 and a ';' as %3B")
	}
	if scheme == "unix" {
		if strings.TrimSpace(u.Path) == "" {
			return fail("a unix:// URL needs a socket path, as unix:///run/redis.sock")
		}
		return u, misplaced, nil
	}
	if db := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' }); len(db) > 1 || len(db) == 1 && !digits(db[0]) {
		return fail("the path must be a database number, as /0")
	}
	return u, misplaced, nil
}

// cutLast is strings.Cut at the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

func digits(s string) bool { return strings.Trim(s, "0123456789") == "" }

// redacted replaces each secret in a dump of a Config, whatever its length.
const redacted = "xxxxx"

// String shows c with its secrets replaced: the password, and the user info
// of URL and of each of Addrs. fmt uses it for %v, %+v, %s, %q and %x.
func (c Config) String() string { return fmt.Sprintf("%+v", c.redacted()) }

// GoString is String in Go syntax, for %#v.
func (c Config) GoString() string {
	return "redisstream.Config" + strings.TrimPrefix(fmt.Sprintf("%#v", c.redacted()), "redisstream.plainConfig")
}

// plainConfig is a Config without its methods, to format its fields.
type plainConfig Config

func (c Config) redacted() plainConfig {
	r := plainConfig(c)
	r.URL = redactURL(c.URL)
	if r.Password != "" {
		r.Password = redacted
	}
	if len(c.Addrs) > 0 {
		r.Addrs = make([]string, len(c.Addrs))
		for i, a := range c.Addrs {
			if _, hostport, ok := cutLast(a, "@"); ok {
				a = redacted + "@" + hostport
			}
			r.Addrs[i] = a
		}
	}
	return r
}

// redactURL replaces everything between the scheme and the last '@', which
// ends a password however it is escaped; a text that is not a URL of a
// known scheme, whole.
func redactURL(s string) string {
	if s == "" {
		return s
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "redis" && scheme != "rediss" && scheme != "unix") {
		return redacted
	}
	if _, after, found := cutLast(rest, "@"); found {
		return scheme + "://" + redacted + "@" + after
	}
	return s
}
