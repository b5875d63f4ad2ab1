package bus

import (
	"encoding/json"
	"net/http"
	"reflect"
	"time"
)

// AdminState is what AdminHandler shows.
type AdminState struct {
	// Config is the effective configuration, secrets redacted, keyed as in
	// the file.
	Config map[string]any `json:"config"`
	// Breakers maps each transport published on through the fallback stage
	// to its circuit breaker's state: closed, half-open or open.
	Breakers map[string]string `json:"breakers"`
	// HeldKeys counts the keys kept on the fallback by their cooldown.
	HeldKeys int `json:"held_keys"`
	// Reloads counts the reloads applied since start; LastReload and
	// LastReloadError describe the last attempt, applied or rejected.
	Reloads         int        `json:"reloads"`
	LastReload      *time.Time `json:"last_reload,omitempty"`
	LastReloadError string     `json:"last_reload_error,omitempty"`
}

// AdminState returns the bus's effective configuration and routing state.
func (b *Bus) AdminState() AdminState {
	b.reloads.mu.Lock()
	cfg := b.cfg
	st := AdminState{Reloads: b.reloads.count}
	if !b.reloads.lastAt.IsZero() {
		at := b.reloads.lastAt
		st.LastReload = &at
	}
	lastErr := b.reloads.lastErr
	b.reloads.mu.Unlock()

	// As Config.String does: beyond what redactValue hides by its key or
	// its place in a URL, any piece of one of those secrets that the
	// configuration repeats elsewhere (a description, a query parameter).
	secrets := configSecrets(cfg).union(b.secrets.Load())
	if lastErr != nil {
		st.LastReloadError = scrubError(lastErr, secrets).Error()
	}
	values := configValues(reflect.ValueOf(cfg)).(map[string]any)
	values["transports"] = redactValue("transports", values["transports"])
	st.Config = secrets.scrubValue(values).(map[string]any)
	st.Breakers = b.fallback.BreakerStates()
	st.HeldKeys = b.fallback.Held()
	return st
}

// AdminHandler returns a read-only http.Handler that answers GET with
// AdminState as JSON. It shows no secret, but it does show topology: mount
// it where only operators reach it.
func (b *Bus) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(b.AdminState())
	})
}
