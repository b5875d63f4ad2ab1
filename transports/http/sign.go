package httptransport

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A request's Switchyard-Signature is t=<unix seconds>,v1=<hex HMAC-SHA256>,
// the MAC over the timestamp, the Content-Type, every ce-* and switchyard-*
// header (the signed topic, Switchyard-Topic, included) and the body, laid
// out as docs/http.md (Signatures) tells. The URL is not covered: proxies
// rewrite it.
const signatureVersion = "v1"

func signRequest(secret []byte, now time.Time, h http.Header, body []byte) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	return "t=" + ts + "," + signatureVersion + "=" + hex.EncodeToString(requestMAC(secret, ts, h, body))
}

var (
	errSignatureMissing = errors.New("no " + headerSignature + " header")
	errSignatureFormat  = errors.New(headerSignature + " is not t=<unix seconds>," + signatureVersion + "=<hex>")
	errSignatureExpired = errors.New(headerSignature + " timestamp is outside the tolerance")
	errSignatureInvalid = errors.New(headerSignature + " does not match")
	errSignedRepeated   = errors.New("a header the signature covers is repeated")
)

func verifyRequest(secret []byte, now time.Time, tolerance time.Duration, h http.Header, body []byte) error {
	v := h.Get(headerSignature)
	if v == "" {
		return errSignatureMissing
	}
	var ts string
	var sums [][]byte
	for part := range strings.SplitSeq(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return errSignatureFormat
		}
		switch k {
		case "t":
			ts = val
		case signatureVersion:
			sum, err := hex.DecodeString(val)
			if err != nil {
				return errSignatureFormat
			}
			sums = append(sums, sum)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sums) == 0 {
		return errSignatureFormat
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errSignatureExpired
	}
	// The MAC joins a header's values with ",", and a reader takes the
	// first: "a,b" split into "a" and "b" would verify and read as "a".
	for k, vs := range h {
		if len(vs) > 1 && signedHeader(k) {
			return errSignedRepeated
		}
	}
	want := requestMAC(secret, ts, h, body)
	for _, sum := range sums {
		if hmac.Equal(sum, want) {
			return nil
		}
	}
	return errSignatureInvalid
}

func requestMAC(secret []byte, ts string, h http.Header, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	write := func(s ...string) {
		for _, p := range s {
			m.Write([]byte(p))
		}
	}
	write(ts, "\n", h.Get(headerContentType), "\n")
	names := make([]string, 0, len(h))
	for k := range h {
		if signedHeader(k) {
			names = append(names, k)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	for _, k := range names {
		write(strings.ToLower(k), ":", strings.Join(h[k], ","), "\n")
	}
	write("\n")
	m.Write(body)
	return m.Sum(nil)
}

// signedHeader reports whether the MAC covers header k by its name
// (Content-Type, which it covers too, it reads apart).
func signedHeader(k string) bool {
	lk := strings.ToLower(k)
	return (strings.HasPrefix(lk, "ce-") || strings.HasPrefix(lk, "switchyard-")) && lk != "switchyard-signature"
}
