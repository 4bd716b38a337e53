package recouptest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/filestage/filestage/internal/testhttp"
)

func TestContract(t *testing.T) {
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/a.gif" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Disposition", `attachment; filename="party.gif"`)
		w.Write([]byte("GIF89a and so on"))
	}))
	defer src.Close()
	tests := []struct {
		name, header, url, tool string
		status                  int
	}{
		{"x-api-key", "x-api-key", src.URL + "/a.gif", "X_POST_TWEET", 200},
		{"bearer", "Authorization", src.URL + "/a.gif", "X_POST_TWEET", 200},
		{"no key", "", src.URL + "/a.gif", "X_POST_TWEET", 401},
		{"no url", "x-api-key", "", "X_POST_TWEET", 400},
		{"relative url", "x-api-key", "/a.gif", "X_POST_TWEET", 400},
		{"no toolSlug", "x-api-key", src.URL + "/a.gif", "", 400},
		{"lower-case toolSlug", "x-api-key", src.URL + "/a.gif", "x_post_tweet", 400},
		{"source 404", "x-api-key", src.URL + "/b.gif", "X_POST_TWEET", 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			body, _ := json.Marshal(map[string]string{"url": tt.url, "toolSlug": tt.tool})
			header := map[string]string{}
			switch tt.header {
			case "x-api-key":
				header["x-api-key"] = s.APIKey
			case "Authorization":
				header["Authorization"] = "Bearer " + s.APIKey
			}
			resp, b := testhttp.Do(t, "POST", s.URL+"/api/connectors/files", header, body)
			var a struct {
				Success               bool
				Name, Mimetype, S3key string
				Error                 int
				Message               string
			}
			json.Unmarshal(b, &a)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d %+v, want %d", resp.StatusCode, a, tt.status)
			}
			if tt.status != 200 {
				if a.Error != tt.status || a.Message == "" || s.Objects() != 0 {
					t.Errorf("error body %+v", a)
				}
				return
			}
			if !a.Success || a.Name != "party.gif" || a.Mimetype != "image/gif" {
				t.Errorf("answer %+v", a)
			}
			if got, ok := s.Object(a.S3key); !ok || string(got) != "GIF89a and so on" {
				t.Error("not stored")
			}
		})
	}
}
