package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

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
}

// Typing is the payload of a typing event.
type Typing struct {
	RequestID string `json:"request_id"`
	At        string `json:"at"`
}

const maxBody = 64 << 10

// newServer serves the chat API, /healthz and /metrics.
func newServer(b message.Publisher, gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/messages", func(w http.ResponseWriter, r *http.Request) {
		var body ChatMessage
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			httpError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
			return
		}
		if body.RequestID == "" || body.Content == "" {
			httpError(w, http.StatusBadRequest, "request_id and content are required")
			return
		}
		payload, _ := json.Marshal(body)
		publish(w, r, b, bus.NewMessage(EventChatMessage, body.RequestID, payload))
	})
	mux.HandleFunc("POST /api/v1/requests/{id}/typing", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		payload, _ := json.Marshal(Typing{RequestID: id, At: time.Now().UTC().Format(time.RFC3339Nano)})
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

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// hub stands in for the real-time hub: it logs each delivery and how long it
// took from NewMessage to here.
func hub(logger *slog.Logger) message.NoPublishHandlerFunc {
	return func(m *message.Message) error {
		latency := time.Duration(0)
		if at, err := time.Parse(time.RFC3339Nano, m.Metadata.Get(bus.MetaPublishedAt)); err == nil {
			latency = time.Since(at)
		}
		logger.Info("hub delivery",
			"event_type", m.Metadata.Get(bus.MetaEventType),
			"key", m.Metadata.Get(bus.MetaEventKey),
			"transport", m.Metadata.Get(bus.MetaTransport),
			"uuid", m.UUID,
			"latency", latency,
		)
		return nil
	}
}
