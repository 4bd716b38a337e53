package fakeplatform

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/filestage/filestage/providers"
)

// Client is a providers.Client that backs off for milliseconds, so that
// tests of retries run fast.
func Client() *providers.Client {
	c := providers.NewClient("filestage-test")
	c.BaseDelay = time.Millisecond
	c.MaxDelay = 50 * time.Millisecond
	return c
}

// Open builds a provider with newP from env and Client, failing the test
// if it cannot.
func Open[P any](t testing.TB, newP func(providers.Settings) (P, error), env map[string]string) P {
	t.Helper()
	p, err := newP(providers.Settings{Getenv: func(k string) string { return env[k] }, HTTP: Client()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TryOpen runs a provider's registry factory with env. With wantErr set
// it must fail, naming wantErr and not echoing a value holding "sekrit",
// and TryOpen returns nil.
func TryOpen(t testing.TB, open providers.Factory, env map[string]string, wantErr string) providers.Provider {
	t.Helper()
	p, err := open(context.Background(), providers.Settings{Getenv: func(k string) string { return env[k] }})
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) || strings.Contains(err.Error(), "sekrit") {
			t.Fatalf("error %v, want one naming %s", err, wantErr)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Upload completes req for data (MD5 and size) and gives data as its body.
func Upload(req providers.UploadRequest, data []byte) (providers.UploadRequest, providers.Body) {
	req.MD5, req.Size = md5.Sum(data), int64(len(data))
	return req, providers.Body{Data: bytes.NewReader(data), Size: req.Size, MD5: req.MD5}
}

// Split sorts requests into API calls (POST) and uploads (PUT).
func Split(requests []Request) (api, uploads []Request) {
	for _, r := range requests {
		switch r.Method {
		case http.MethodPost:
			api = append(api, r)
		case http.MethodPut:
			uploads = append(uploads, r)
		}
	}
	return api, uploads
}

// Refused checks a failure. With status -1 it is a plain error, not a
// *providers.Error, that mentions text; otherwise a *providers.Error from
// provider with that status and a fix, text in its message or fix. The
// *providers.Error is returned for further checks.
func Refused(t testing.TB, err error, provider string, status int, text string) *providers.Error {
	t.Helper()
	var pe *providers.Error
	switch {
	case status == -1:
		if errors.As(err, &pe) || !strings.Contains(err.Error(), text) {
			t.Errorf("error %v, want a plain one with %q", err, text)
		}
		return nil
	case !errors.As(err, &pe):
		t.Fatalf("error %v is not a *providers.Error", err)
	case pe.Status != status || pe.Provider != provider || pe.Fix == "" || !strings.Contains(pe.Message+" "+pe.Fix, text):
		t.Errorf("error %+v, want status %d with a fix, and %q", pe, status, text)
	}
	return pe
}
