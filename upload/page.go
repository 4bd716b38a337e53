package upload

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"time"
)

//go:embed assets
var assets embed.FS

var pageTemplate = template.Must(template.ParseFS(assets, "assets/page.html"))

// pageData is what the page template gets.
type pageData struct {
	ID, Message, Filename, Accept, Endpoint string
	MaxBytes                                int64
	Expires                                 time.Time
	// State is Waiting, Receiving, Staged (the link was used), Expired or
	// Failed; Unknown when no link has this ID.
	State string
	Error string
}

// securityHeaders keep the page to itself: its own scripts and styles only,
// no framing, no referrer carrying the link's capability elsewhere.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

// page serves a link's upload page, or the page saying why it cannot be
// used.
func (m *Manager) page(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	id := r.PathValue("id")
	d := pageData{ID: id, Endpoint: PathTus, State: "unknown"}
	status := http.StatusNotFound
	m.mu.Lock()
	if l, ok := m.links[id]; ok {
		// What the page shows; the sweeper ends the link itself.
		state := m.statusOf(l).State
		if state == Waiting && time.Now().After(l.expires) {
			state = Expired
		}
		d.Message, d.Filename, d.Accept, d.MaxBytes, d.Expires, d.State = l.Message, l.Filename, l.Accept, l.MaxBytes, l.expires, string(state)
		status = http.StatusOK
		switch state {
		case Staged, Expired:
			status = http.StatusGone
		case Failed:
			d.Error = "the file arrived but could not be stored; ask your assistant for a new link"
		}
	}
	m.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	pageTemplate.Execute(w, d)
}

// assetHandler serves the page's scripts and styles.
func assetHandler() http.Handler {
	sub, _ := fs.Sub(assets, "assets")
	files := http.FileServer(http.FS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}
