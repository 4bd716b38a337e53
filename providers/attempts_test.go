package providers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// TestAttempted: the hook learns how each attempt ended, and whether it
// was an API call or an upload.
func TestAttempted(t *testing.T) {
	for _, tt := range []struct {
		name     string
		statuses []int
		upload   bool
		want     []string
	}{
		{"ok at once", []int{200}, false, []string{"api ok"}},
		{"retried, then ok", []int{503, 429, 200}, true, []string{"upload retry", "upload retry", "upload ok"}},
		{"not retryable", []int{400}, false, []string{"api error"}},
		{"retries run out", []int{500, 500, 500, 500, 500}, true, []string{"upload retry", "upload retry", "upload retry", "upload retry", "upload error"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(&scripted{statuses: tt.statuses})
			defer srv.Close()
			var waits []time.Duration
			c := testClient(&waits)
			var got []string
			c.Attempted = func(op, outcome string) { got = append(got, op+" "+outcome) }
			if tt.upload {
				c.Upload(context.Background(), Slot{URL: srv.URL, Method: http.MethodPut}, Body{})
			} else {
				c.JSON(context.Background(), http.MethodPost, srv.URL, nil, map[string]string{}, nil)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("attempts %q, want %q", got, tt.want)
			}
		})
	}
	// Without a hook nothing is called.
	srv := httptest.NewServer(&scripted{statuses: []int{503, 200}})
	defer srv.Close()
	var waits []time.Duration
	if err := testClient(&waits).JSON(context.Background(), http.MethodGet, srv.URL, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
}
