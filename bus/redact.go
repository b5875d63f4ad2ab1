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

// redacted replaces a secret. It is the same for every secret so that its
// length says nothing about the secret's.
const redacted = "xxxxx"

// secretWords mark a key whose value is a secret when its lower-cased name,
// with '-' read as '_', contains one of them.
var secretWords = []string{
	"password", "passwd", "passphrase", "secret", "token", "authorization",
	"api_key", "apikey", "credential", "private_key",
}

// secretTokens are short names of secrets, matched as whole words of a key
// (auth_pass, pwd) since as substrings they are everywhere (bypass).
var secretTokens = []string{"pass", "pwd", "pw", "auth"}

// isSecretKey reports whether the value under name may be a secret. A near
// miss of a secret word counts (pasword, secert, tokne, api_kye), so that a
// misspelt key, which the transport will refuse, is not printed in clear
// by the dump that helps find the typo. A false positive costs a hidden
// value; a false negative, a leaked one.
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

// secretKeys caches isSecretKey: a dump (AdminState, polled) asks about the
// same few names again and again. Bounded, as names can come from anywhere.
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
	for _, w := range secretWords {
		w = strings.ReplaceAll(w, "_", "")
		// One edit for short words, two for long ones: "token" is one
		// edit from "taken" already.
		if nearSubstring(compact, w, min(2, len(w)/4)) {
			return true
		}
	}
	return false
}

// keyWords splits a key's name into lower-case words at every character
// that is not a letter or digit and at each lower-to-upper change:
// "clientSecret", "X-Api-Key", "api_key".
func keyWords(name string) []string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, string(cur))
			cur = cur[:0]
		}
	}
	afterLower := false
	for _, r := range name {
		switch {
		case unicode.IsUpper(r):
			if afterLower {
				flush()
			}
			cur = append(cur, unicode.ToLower(r))
			afterLower = false
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			cur = append(cur, r)
			afterLower = true
		default:
			flush()
			afterLower = false
		}
	}
	flush()
	return words
}

// nearSubstring reports whether some substring of s is at most k edits
// (insertions, deletions, substitutions, swaps of neighbours) from w:
// Sellers' algorithm, a row of edit distances to w's prefixes where a
// match may start anywhere in s.
func nearSubstring(s, w string, k int) bool {
	n := len(s)
	// prev2, prev, cur: rows i-2, i-1 and i; row 0 is all zeros, as the
	// match may start at any j.
	prev2, prev, cur := make([]int, n+1), make([]int, n+1), make([]int, n+1)
	for i := 1; i <= len(w); i++ {
		cur[0] = i
		for j := 1; j <= n; j++ {
			cost := 1
			if w[i-1] == s[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && w[i-1] == s[j-2] && w[i-2] == s[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return slices.Min(prev) <= k
}

// isHeadersKey reports whether the value under name is a set of HTTP
// headers ("headers", "extra_headers"): every value in it is redacted,
// as tokens travel under any header name (X-Api-Key, X-Hub-Signature,
// vendor ones).
func isHeadersKey(name string) bool { return strings.HasSuffix(strings.ToLower(name), "headers") }

var (
	// The start of a URL: its scheme and "://".
	urlScheme = regexp.MustCompile(`(?i)[a-z][a-z0-9+.\-]*://`)
	// A secret-named query parameter, in text that is not a whole URL:
	// ?token=…, &password=….
	queryParamSecret = regexp.MustCompile(`(?i)([?&][^\s"'<>=&#]*(?:` +
		strings.Join(secretWords, "|") + `)[^\s"'<>=&#]*=)[^\s"'<>&#]+`)
)

// redactString hides the secrets that can hide in free text: the userinfo
// of URLs, the value of every query parameter of a URL (whatever its name:
// API keys hide under names like "code" or "sig"), and secret-named query
// parameters elsewhere.
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

// urlSpan is a URL found in a text: its userinfo (empty when it has none)
// runs from user to at, where at is the index of its '@' or -1, and the
// rest of it (host, path, query) from rest to end.
type urlSpan struct {
	start, user, at, rest, end int
}

// findURLs finds the URLs of s. A password may hold any character
// unescaped, '/', '#', '?', '%', '@', spaces and "://" included, and URL
// parsers disagree on where it ends, so the userinfo is taken to run from
// "://" to the LAST '@' before the next URL starts: everything that might
// be a password is in it. A URL starts after the start of s, a space, or
// one of "'<>([{,;= (so that "redis://:a://b@h" is one URL); a URL opened
// by a '"' ends at the next '"' that is not escaped, as Go's %q writes
// it. With whole, s is one URL and its userinfo runs to its last '@'.
func findURLs(s string, whole bool) []urlSpan {
	var starts [][]int
	for _, m := range urlScheme.FindAllStringIndex(s, -1) {
		if len(starts) == 0 || (!whole && (m[0] == 0 || strings.ContainsRune(" \t\r\n\"'<>([{,;=", rune(s[m[0]-1])))) {
			starts = append(starts, m)
		}
	}
	spans := make([]urlSpan, 0, len(starts))
	for i, m := range starts {
		regionEnd := len(s)
		if i+1 < len(starts) {
			regionEnd = starts[i+1][0]
		}
		if !whole && m[0] > 0 && s[m[0]-1] == '"' {
			if q := closingQuote(s[m[1]:regionEnd]); q >= 0 {
				regionEnd = m[1] + q
			}
		}
		sp := urlSpan{start: m[0], user: m[1], at: -1, rest: m[1]}
		if a := strings.LastIndexByte(s[m[1]:regionEnd], '@'); a >= 0 {
			sp.at = m[1] + a
			sp.rest = sp.at + 1
		}
		sp.end = regionEnd
		if !whole {
			if e := strings.IndexAny(s[sp.rest:regionEnd], " \t\r\n\"'<>"); e >= 0 {
				sp.end = sp.rest + e
			}
		}
		spans = append(spans, sp)
	}
	return spans
}

// closingQuote returns the index of the first '"' of s not escaped by a
// backslash, or -1.
func closingQuote(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// userinfoSecret returns what of a URL's userinfo is secret: the password,
// after the first ':', or, without a ':', the whole of it, which may be a
// token (https://TOKEN@host).
func userinfoSecret(userinfo string) (name, secret string) {
	if user, password, ok := strings.Cut(userinfo, ":"); ok && plainUserName(user) {
		return user, password
	}
	return "", userinfo
}

// plainUserName reports whether a user name can be shown: one that holds
// none of the characters that would make it part of a password that URL
// parsing got wrong.
func plainUserName(user string) bool {
	return !strings.ContainsFunc(user, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune(`/?#@%"'<>\[]`, r)
	})
}

func redactURLs(s string, whole bool) string {
	spans := findURLs(s, whole)
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
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

// minSecretPiece is the shortest piece of a secret that scrub removes from
// a text: shorter ones are everywhere in ordinary words.
const minSecretPiece = 4

// secretSet holds the secrets of a configuration, so that they can be
// removed from text that quotes them however it quotes them: whole, in
// part (a URL parser's "invalid port \":Ab9x\"" is the start of a
// password), escaped or percent-decoded. A nil *secretSet holds none.
type secretSet struct {
	// pieces are the minSecretPiece-byte substrings of every secret.
	pieces map[string]bool
}

// configSecrets collects the secrets of c's values: see secretSet.collect.
func configSecrets(c Config) *secretSet {
	return collectSecrets(configValues(reflect.ValueOf(c)))
}

// collectSecrets collects the secrets of values, as normalize returns
// them: every value under a secret-named key or a set of headers, and the
// userinfo of every URL.
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
	case []string:
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
// rawURL (?password=…, &token=…): each to the next '&', and to the end of
// the URL, as a value may hold an unescaped '&' too.
func (s *secretSet) addQuerySecrets(rawURL string) {
	q := strings.IndexByte(rawURL, '?')
	if q < 0 {
		return
	}
	for i := q + 1; i < len(rawURL); {
		param := rawURL[i:]
		if amp := strings.IndexByte(param, '&'); amp >= 0 {
			param = param[:amp]
		}
		if name, value, ok := strings.Cut(param, "="); ok && isSecretKey(name) {
			s.add(value)
			s.add(rawURL[i+len(name)+1:])
		}
		i += len(param) + 1
	}
}

// add adds secret and the forms a message may quote it in: percent-decoded
// (a URL's password as the server sees it), percent-encoded (as a URL
// prints it again) and Go-quoted.
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

// scrub replaces every stretch of text made of pieces of the secrets,
// minSecretPiece bytes or longer, with the redaction mark: no part of a
// secret that long survives, wherever it sits in text and whatever text
// around it says.
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
	// Whole characters: a piece may start or end inside a multi-byte one.
	for i := range hidden {
		if hidden[i] && !utf8.RuneStart(text[i]) {
			for j := i - 1; j >= 0 && !hidden[j]; j-- {
				hidden[j] = true
				if utf8.RuneStart(text[j]) {
					break
				}
			}
		}
		if hidden[i] && i+1 < len(text) && !hidden[i+1] && !utf8.RuneStart(text[i+1]) {
			hidden[i+1] = true
		}
	}
	var b strings.Builder
	for i := 0; i < len(text); {
		if !hidden[i] {
			b.WriteByte(text[i])
			i++
			continue
		}
		for i < len(text) && hidden[i] {
			i++
		}
		b.WriteString(redacted)
	}
	return b.String()
}
