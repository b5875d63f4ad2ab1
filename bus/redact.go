package bus

import (
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// redacted replaces a secret, the same for every secret so that its length
// says nothing.
const redacted = "xxxxx"

// secretWords mark a key as secret when its lower-cased name, '-' read as
// '_', contains one.
var secretWords = []string{
	"password", "passwd", "passphrase", "secret", "token", "authorization",
	"api_key", "apikey", "credential", "private_key",
}

// secretTokens are short names of secrets, matched as whole words of a key
// (auth_pass, pwd): as substrings they are everywhere (bypass).
var secretTokens = []string{"pass", "pwd", "pw", "auth"}

// isSecretKey reports whether the value under name may be a secret. A near
// miss of a secret word counts (pasword, tokne), so that a misspelt key is
// not printed in clear by the dump that helps find the typo.
func isSecretKey(name string) bool {
	if v, ok := secretKeys.Load(name); ok {
		return v.(bool)
	}
	secret := secretName(name)
	if secretKeysCached.Add(1) <= maxSecretKeysCached {
		secretKeys.Store(name, secret)
	}
	return secret
}

// secretKeys caches isSecretKey for AdminState, which is polled and asks
// about the same names each time. Bounded: names can come from anywhere.
var (
	secretKeys       sync.Map
	secretKeysCached atomic.Int64
)

const maxSecretKeysCached = 4096

func secretName(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(name), "-", "_")
	if slices.ContainsFunc(secretWords, func(w string) bool { return strings.Contains(n, w) }) {
		return true
	}
	words := keyWords(name)
	for i, w := range words {
		// signing_key, access-key, XApiKey; not key_file.
		if slices.Contains(secretTokens, w) || (w == "key" && i == len(words)-1 && i > 0) {
			return true
		}
	}
	compact := strings.Join(words, "")
	// One edit for short words, two for long ones: "token" is one edit
	// from "taken" already.
	return slices.ContainsFunc(secretWords, func(w string) bool {
		w = strings.ReplaceAll(w, "_", "")
		return editDistance(w, compact, true) <= min(2, len(w)/4)
	})
}

// keyWords splits a key's name into lower-case words at every character
// that is not a letter or digit and at each lower-to-upper change:
// "clientSecret", "X-Api-Key", "api_key".
func keyWords(name string) []string {
	var words []string
	var cur []rune
	afterLower := false
	for _, r := range name {
		upper, word := unicode.IsUpper(r), unicode.IsLetter(r) || unicode.IsDigit(r)
		if (!word || upper && afterLower) && len(cur) > 0 {
			words = append(words, string(cur))
			cur = cur[:0]
		}
		if word {
			cur = append(cur, unicode.ToLower(r))
		}
		afterLower = word && !upper
	}
	if len(cur) > 0 {
		words = append(words, string(cur))
	}
	return words
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of neighbours (the commonest typo) that turn a into b: the optimal
// string alignment distance. With inside, it is the distance from a to
// the nearest substring of b (Sellers' algorithm: a match may start
// anywhere in b).
func editDistance(a, b string, inside bool) int {
	// Rows i-2, i-1 and i of the table.
	prev2, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		if !inside {
			prev[j] = j
		}
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	if inside {
		return slices.Min(prev)
	}
	return prev[len(b)]
}

// isHeadersKey reports whether the value under name is a set of HTTP
// headers ("headers", "extra_headers"), all of whose values are redacted:
// tokens travel under any header name.
func isHeadersKey(name string) bool { return strings.HasSuffix(strings.ToLower(name), "headers") }

var (
	urlScheme = regexp.MustCompile(`(?i)[a-z][a-z0-9+.\-]*://`)
	// A secret-named query parameter in text that is not a whole URL.
	queryParamSecret = regexp.MustCompile(`(?i)([?&][^\s"'<>=&#]*(?:` +
		strings.Join(secretWords, "|") + `)[^\s"'<>=&#]*=)[^\s"'<>&#]+`)
)

// redactString hides the secrets that can hide in free text: the userinfo
// of URLs, the value of every query parameter of a URL (API keys hide
// under names like "code" or "sig"), and secret-named query parameters
// elsewhere.
func redactString(s string) string { return redactText(s, false) }

// redactText is redactString; with whole, s is one configured URL, whose
// userinfo runs to its last '@' whatever comes between.
func redactText(s string, whole bool) string {
	if !strings.Contains(s, "://") && !strings.Contains(s, "=") {
		return s
	}
	s = redactURLs(s, whole)
	return queryParamSecret.ReplaceAllString(s, "${1}"+redacted)
}

// urlSpan is a URL found in a text: its userinfo runs from user to at (the
// index of its '@', or -1 without one), the rest of it from rest to end.
type urlSpan struct {
	start, user, at, rest, end int
}

// findURLs finds the URLs of s. A password may hold any character
// unescaped ("/#?%@", spaces, "://") and URL parsers disagree on where it
// ends, so the userinfo runs from "://" to the LAST '@' before the next
// URL: everything that might be a password is in it. A URL starts at the
// start of s or after a space or one of "'<>([{,;= (so "redis://:a://b@h"
// is one URL); one opened by '"' ends at the next unescaped '"', as %q
// writes it. With whole, s is one URL.
func findURLs(s string, whole bool) []urlSpan {
	var starts [][]int
	for _, m := range urlScheme.FindAllStringIndex(s, -1) {
		if len(starts) == 0 || (!whole && (m[0] == 0 || strings.ContainsRune(" \t\r\n\"'<>([{,;=", rune(s[m[0]-1])))) {
			starts = append(starts, m)
		}
	}
	spans := make([]urlSpan, 0, len(starts))
	for i, m := range starts {
		end := len(s)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		for j := m[1]; !whole && m[0] > 0 && s[m[0]-1] == '"' && j < end; j++ {
			if s[j] == '\\' {
				j++ // an escaped character
			} else if s[j] == '"' {
				end = j
			}
		}
		sp := urlSpan{start: m[0], user: m[1], at: -1, rest: m[1], end: end}
		if a := strings.LastIndexByte(s[m[1]:end], '@'); a >= 0 {
			sp.at = m[1] + a
			sp.rest = sp.at + 1
		}
		if e := strings.IndexAny(s[sp.rest:end], " \t\r\n\"'<>"); e >= 0 && !whole {
			sp.end = sp.rest + e
		}
		spans = append(spans, sp)
	}
	return spans
}

// userinfoSecret splits a URL's userinfo into a user name that can be shown
// and its secret: the password, or, without a ':' or with a user name that
// holds what a misparsed password would, the whole of it (a token, as in
// https://TOKEN@host).
func userinfoSecret(userinfo string) (name, secret string) {
	user, password, ok := strings.Cut(userinfo, ":")
	if ok && !strings.ContainsFunc(user, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune(`/?#@%"'<>\[]`, r)
	}) {
		return user, password
	}
	return "", userinfo
}

func redactURLs(s string, whole bool) string {
	var b strings.Builder
	last := 0
	for _, sp := range findURLs(s, whole) {
		b.WriteString(s[last:sp.user])
		if sp.at >= 0 {
			if userinfo := s[sp.user:sp.at]; userinfo != "" {
				if name, _ := userinfoSecret(userinfo); name != "" || strings.HasPrefix(userinfo, ":") {
					b.WriteString(name + ":")
				}
				b.WriteString(redacted)
			}
			b.WriteByte('@')
		}
		b.WriteString(redactQuery(s[sp.rest:sp.end]))
		last = sp.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// redactQuery replaces the value of each query parameter of rawURL, keeping
// the names; a parameter without "=" may be a bare token and is replaced
// whole. Empty values stay empty.
func redactQuery(rawURL string) string {
	q := strings.IndexByte(rawURL, '?')
	if q < 0 {
		return rawURL
	}
	end := len(rawURL)
	if h := strings.IndexByte(rawURL[q:], '#'); h >= 0 {
		end = q + h
	}
	params := strings.Split(rawURL[q+1:end], "&")
	for i, p := range params {
		name, value, ok := strings.Cut(p, "=")
		switch {
		case !ok && p != "":
			params[i] = redacted
		case value != "":
			params[i] = name + "=" + redacted
		}
	}
	return rawURL[:q+1] + strings.Join(params, "&") + rawURL[end:]
}

// minSecretPiece is the shortest piece of a secret that scrub removes:
// shorter ones are everywhere in ordinary words.
const minSecretPiece = 4

// secretSet holds the secrets of a configuration, as their
// minSecretPiece-byte substrings, so that they can be removed from text
// that quotes them however it does: whole, in part (a URL parser's
// "invalid port \":Ab9x\"" is the start of a password), escaped or
// percent-decoded. A nil *secretSet holds none.
type secretSet struct {
	pieces map[string]bool
}

// configSecrets collects the secrets of c's values.
func configSecrets(c Config) *secretSet {
	return collectSecrets(configValues(reflect.ValueOf(c)))
}

// collectSecrets collects the secrets of normalized values: every value
// under a secret-named key or a set of headers, and the userinfo and
// secret-named query parameters of every URL.
func collectSecrets(values any) *secretSet {
	s := &secretSet{pieces: make(map[string]bool)}
	s.collect("", values)
	return s
}

func (s *secretSet) collect(key string, v any) {
	switch x := v.(type) {
	case string:
		if isSecretKey(key) || isHeadersKey(key) {
			s.add(x)
		}
		if strings.Contains(x, "://") {
			for _, whole := range []bool{true, false} {
				for _, sp := range findURLs(x, whole) {
					if sp.at >= 0 {
						_, secret := userinfoSecret(x[sp.user:sp.at])
						s.add(secret)
					}
					s.addQuerySecrets(x[sp.rest:sp.end])
				}
			}
		}
	case map[string]any:
		for k, e := range x {
			if isHeadersKey(key) {
				k = key // a header's value is a secret whatever its name
			}
			s.collect(k, e)
		}
	case []any:
		for _, e := range x {
			s.collect(key, e)
		}
	default:
		if x != nil && (isSecretKey(key) || isHeadersKey(key)) {
			s.add(fmt.Sprint(x))
		}
	}
}

// addQuerySecrets adds the values of the secret-named query parameters of
// rawURL: each to the next '&', and to the end of the URL, as a value may
// hold an unescaped '&' too.
func (s *secretSet) addQuerySecrets(rawURL string) {
	q := strings.IndexByte(rawURL, '?')
	if q < 0 {
		return
	}
	for i := q + 1; i < len(rawURL); {
		param, _, _ := strings.Cut(rawURL[i:], "&")
		if name, value, ok := strings.Cut(param, "="); ok && isSecretKey(name) {
			s.add(value)
			s.add(rawURL[i+len(name)+1:])
		}
		i += len(param) + 1
	}
}

// add adds secret in the forms a message may quote it in: as it is,
// percent-decoded (a URL's password as the server sees it), percent-encoded
// and Go-quoted.
func (s *secretSet) add(secret string) {
	forms := []string{secret, url.PathEscape(secret), url.QueryEscape(secret), strconv.Quote(secret)}
	for _, unescape := range []func(string) (string, error){url.PathUnescape, url.QueryUnescape} {
		if d, err := unescape(secret); err == nil {
			forms = append(forms, d, strconv.Quote(d))
		}
	}
	for _, f := range forms {
		for i := 0; i+minSecretPiece <= len(f); i++ {
			s.pieces[f[i:i+minSecretPiece]] = true
		}
	}
}

// union returns the secrets of s and t together.
func (s *secretSet) union(t *secretSet) *secretSet {
	switch {
	case s == nil || len(s.pieces) == 0:
		return t
	case t == nil || len(t.pieces) == 0:
		return s
	}
	u := &secretSet{pieces: maps.Clone(s.pieces)}
	maps.Copy(u.pieces, t.pieces)
	return u
}

// scrub replaces every stretch of text made of pieces of the secrets with
// the redaction mark: no part of a secret minSecretPiece bytes or longer
// survives, wherever it sits in text.
func (s *secretSet) scrub(text string) string {
	if s == nil || len(s.pieces) == 0 || len(text) < minSecretPiece {
		return text
	}
	var hidden []bool
	for i := 0; i+minSecretPiece <= len(text); i++ {
		if s.pieces[text[i:i+minSecretPiece]] {
			if hidden == nil {
				hidden = make([]bool, len(text))
			}
			for j := i; j < i+minSecretPiece; j++ {
				hidden[j] = true
			}
		}
	}
	if hidden == nil {
		return text
	}
	// Whole characters hidden: a piece may start or end inside one.
	var b strings.Builder
	inSecret := false
	for i := 0; i < len(text); {
		j := i + 1
		for j < len(text) && !utf8.RuneStart(text[j]) {
			j++
		}
		secret := slices.Contains(hidden[i:j], true)
		if !secret {
			b.WriteString(text[i:j])
		} else if !inSecret {
			b.WriteString(redacted)
		}
		inSecret, i = secret, j
	}
	return b.String()
}
