package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchyard-go/switchyard/bus"
)

// Topic is where the chat service publishes; the hub consumes it.
const Topic = "events:chat"

// Event types the service publishes.
const (
	EventChatMessage = "chat_message"
	EventTyping      = "typing"
)

// ChatMessage is the body of POST /api/v1/messages and the payload of a
// chat_message event.
type ChatMessage struct {
	RequestID string `json:"request_id"`
	Content   string `json:"content"`
	// User, optional, is who wrote it: the page shows it.
	User string `json:"user,omitempty"`
}

// Typing is the payload of a typing event.
type Typing struct {
	RequestID string `json:"request_id"`
	At        string `json:"at"`
	// User, optional, is who is typing.
	User string `json:"user,omitempty"`
}

// TypingBody is the optional body of POST /api/v1/requests/{id}/typing.
type TypingBody struct {
	User string `json:"user"`
}

const maxBody = 64 << 10

// newServer serves the chat API, /healthz and /metrics.
func newServer(b message.Publisher, gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/messages", func(w http.ResponseWriter, r *http.Request) {
		var body ChatMessage
		if status, err := decodeBody(w, r, &body); err != nil {
			httpError(w, status, err.Error())
			return
		}
		if body.RequestID == "" || body.Content == "" {
			httpError(w, http.StatusBadRequest, "request_id and content are required")
			return
		}
		if err := checkID(body.RequestID); err != nil {
			httpError(w, http.StatusBadRequest, "request_id "+err.Error())
			return
		}
		if err := checkUser(body.User); err != nil {
			httpError(w, http.StatusBadRequest, "user "+err.Error())
			return
		}
		payload, _ := json.Marshal(body)
		publish(w, r, b, bus.NewMessage(EventChatMessage, body.RequestID, payload))
	})
	mux.HandleFunc("POST /api/v1/requests/{id}/typing", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := checkID(id); err != nil {
			httpError(w, http.StatusBadRequest, "request id "+err.Error())
			return
		}
		// The body is optional: empty, or {"user": "…"}.
		var body TypingBody
		if r.ContentLength != 0 {
			if status, err := decodeBody(w, r, &body); err != nil && !errors.Is(err, io.EOF) {
				httpError(w, status, err.Error())
				return
			}
		}
		if err := checkUser(body.User); err != nil {
			httpError(w, http.StatusBadRequest, "user "+err.Error())
			return
		}
		payload, _ := json.Marshal(Typing{RequestID: id, At: time.Now().UTC().Format(time.RFC3339Nano), User: body.User})
		publish(w, r, b, bus.NewMessage(EventTyping, id, payload))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return mux
}

// publish hands the event to the bus; the request's deadline bounds the wait
// for room in the ingress.
func publish(w http.ResponseWriter, r *http.Request, b message.Publisher, m *message.Message) {
	m.SetContext(r.Context())
	if err := b.Publish(Topic, m); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, bus.ErrQueueFull) || errors.Is(err, bus.ErrClosed) {
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "1")
		}
		httpError(w, status, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"id": m.UUID, "status": "accepted"})
}

// decodeBody reads exactly one JSON object of known fields from r's body,
// at most maxBody bytes, and says which status a failure deserves.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// One object, then nothing: trailing data is a malformed request,
		// not something to ignore.
		if dec.Decode(&json.RawMessage{}) != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes", tooLarge.Limit)
	default:
		return http.StatusBadRequest, fmt.Errorf("invalid JSON body: %w", err)
	}
}

// maxIDLen bounds a request id: it becomes an event key, which transports
// carry in headers and stream fields.
const maxIDLen = 256

// checkID refuses, at the API, the ids a transport would refuse later (and
// dead-letter after the client was told 202): invalid UTF-8, control
// characters such as NUL or line breaks, and the overlong.
func checkID(id string) error {
	switch {
	case len(id) > maxIDLen:
		return fmt.Errorf("is longer than %d bytes", maxIDLen)
	case !utf8.ValidString(id):
		return errors.New("is not valid UTF-8")
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return errors.New("holds a control character")
	}
	return nil
}

// maxUserLen bounds a user name: the page shows it.
const maxUserLen = 64

// checkUser refuses the user names checkID refuses, and those longer than
// maxUserLen bytes; an empty name is allowed.
func checkUser(user string) error {
	if len(user) > maxUserLen {
		return fmt.Errorf("is longer than %d bytes", maxUserLen)
	}
	return checkID(user)
}

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// hub stands in for the real-time hub: it logs each delivery and how long it
// took from NewMessage to here, and hands it to the page's feed (nil: none).
func hub(logger *slog.Logger, f *feed) message.NoPublishHandlerFunc {
	return func(m *message.Message) error {
		latency := time.Duration(0)
		publishedAt := m.Metadata.Get(bus.MetaPublishedAt)
		if at, err := time.Parse(time.RFC3339Nano, publishedAt); err == nil {
			latency = max(time.Since(at), 0)
		}
		eventType := m.Metadata.Get(bus.MetaEventType)
		key := m.Metadata.Get(bus.MetaEventKey)
		transport := m.Metadata.Get(bus.MetaTransport)
		logger.Info("hub delivery",
			"event_type", eventType,
			"key", key,
			"transport", transport,
			"uuid", m.UUID,
			"latency", latency,
		)
		if f != nil {
			f.delivery(newDelivery(m.UUID, eventType, key, transport, publishedAt, latency, m.Payload))
		}
		return nil
	}
}
