package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// capture records what the API hands to the bus, as it hands it.
type capture struct {
	mu   sync.Mutex
	msgs []*message.Message
}

func (c *capture) Publish(_ string, msgs ...*message.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, msgs...)
	return nil
}

func (c *capture) Close() error { return nil }

func (c *capture) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// TestAPIRefusesBadInput: what a transport would refuse later (and
// dead-letter after the client was told 202) is refused at the API, with
// the status that says why, and nothing reaches the bus.
func TestAPIRefusesBadInput(t *testing.T) {
	pub := &capture{}
	srv := httptest.NewServer(newServer(pub, nil))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name, path, body string
		status           int
		says             string
	}{
		{"typing id not UTF-8", "/api/v1/requests/%FF%FE/typing", "", http.StatusBadRequest, "UTF-8"},
		{"typing id with NUL", "/api/v1/requests/a%00b/typing", "", http.StatusBadRequest, "control character"},
		{"typing id with a line break", "/api/v1/requests/a%0Ab/typing", "", http.StatusBadRequest, "control character"},
		{"typing id overlong", "/api/v1/requests/" + strings.Repeat("x", 257) + "/typing", "", http.StatusBadRequest, "longer"},
		{"body of 50 MB", "/api/v1/messages", `{"request_id":"r","content":"` + strings.Repeat("x", 50<<20) + `"}`, http.StatusRequestEntityTooLarge, "larger"},
		{"trailing garbage", "/api/v1/messages", `{"request_id":"r","content":"hi"}garbage`, http.StatusBadRequest, "trailing"},
		{"a second object", "/api/v1/messages", `{"request_id":"r","content":"hi"} {}`, http.StatusBadRequest, "trailing"},
		{"request_id with NUL", "/api/v1/messages", `{"request_id":"a\u0000b","content":"hi"}`, http.StatusBadRequest, "control character"},
		{"unknown field", "/api/v1/messages", `{"request_id":"r","content":"hi","x":1}`, http.StatusBadRequest, "unknown field"},
		{"missing content", "/api/v1/messages", `{"request_id":"r"}`, http.StatusBadRequest, "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+tc.path, "application/json", strings.NewReader(tc.body))
			require.NoError(t, err)
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tc.status, resp.StatusCode, "body: %s", got)
			var e map[string]string
			require.NoError(t, json.Unmarshal(got, &e))
			assert.Contains(t, e["error"], tc.says)
		})
	}
	assert.Zero(t, pub.count(), "nothing refused reaches the bus")

	for _, ok := range []struct{ path, body string }{
		{"/api/v1/requests/conv-%C3%A9/typing", ""},
		{"/api/v1/messages", `{"request_id":"conv-é","content":"héllo \u0000 there"}` + "\n"},
	} {
		resp, err := http.Post(srv.URL+ok.path, "application/json", bytes.NewBufferString(ok.body))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusAccepted, resp.StatusCode, ok.path)
	}
	assert.Equal(t, 2, pub.count(), "valid requests, non-ASCII ids included, are accepted")
}
