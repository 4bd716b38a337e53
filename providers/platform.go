package providers

import (
	"cmp"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// This file is what the providers that talk to a platform's HTTP API
// (composio, alloy, recoup, quant) have in common: reading their settings,
// and turning the platform's and its storage's refusals into *Error.

// Opened is a Factory's result for a provider's New: a failed New gives a
// nil Provider, not a nil *P inside a non-nil interface.
func Opened[P Provider](p P, err error) (Provider, error) {
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Env reads a setting through Getenv, without surrounding white space; it
// is empty when Getenv is nil.
func (s Settings) Env(name string) string {
	if s.Getenv == nil {
		return ""
	}
	return strings.TrimSpace(s.Getenv(name))
}

// Require reads a setting that must be set; the error says how to get a
// value.
func (s Settings) Require(name, how string) (string, error) {
	v := s.Env(name)
	if v == "" {
		return "", fmt.Errorf("%s is not set: %s", name, how)
	}
	return v, nil
}

// Client is the shared HTTP client, or a production one when none is set.
func (s Settings) Client() *Client {
	if s.HTTP == nil {
		return NewClient("filestage")
	}
	return s.HTTP
}

// BaseURL reads the API base URL setting name, def when unset, without a
// trailing slash.
func (s Settings) BaseURL(name, def string) (string, error) {
	v := cmp.Or(s.Env(name), def)
	if !HTTPURL(v) || strings.ContainsAny(v, "?#") {
		// The value is not echoed: it could carry credentials.
		return "", fmt.Errorf("%s must be an absolute http(s) URL without a query or fragment, such as %s", name, def)
	}
	return strings.TrimSuffix(v, "/"), nil
}

// HTTPURL reports whether s is an absolute http(s) URL.
func HTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// URLExpiry reads when a presigned URL stops working from the URL itself:
// SigV4's X-Amz-Date plus X-Amz-Expires, or an Azure SAS's se.
func URLExpiry(raw string) (time.Time, bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return time.Time{}, false
	}
	q := u.Query()
	if d, e := q.Get("X-Amz-Date"), q.Get("X-Amz-Expires"); d != "" && e != "" {
		signed, err := time.Parse("20060102T150405Z", d)
		secs, serr := strconv.Atoi(e)
		if err == nil && serr == nil && secs >= 0 {
			return signed.Add(time.Duration(secs) * time.Second), true
		}
	}
	if se := q.Get("se"); se != "" {
		// SAS expiry is ISO 8601 in UTC, at any of these precisions.
		for _, layout := range []string{time.RFC3339, "2006-01-02T15:04Z07:00", "2006-01-02"} {
			if t, err := time.Parse(layout, se); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

// APIError reports a failed call to provider's API; call names it, as in
// "upload request". A failure without an answer (a connection error, a
// malformed answer) is only wrapped. An answer becomes an *Error with its
// status and request ID, and with what explain says: the fix, what the
// status means (followed by the body's own message, either alone where
// the other is missing), and anything else it sets on e.
func APIError(provider, call string, err error, explain func(herr *HTTPError, e *Error) (what, fix string)) error {
	var herr *HTTPError
	if !errors.As(err, &herr) {
		return fmt.Errorf("%s: %s: %w", provider, call, err)
	}
	e := &Error{
		Provider:  provider,
		Status:    herr.Status,
		RequestID: cmp.Or(herr.Header.Get("X-Request-Id"), herr.Header.Get("X-Amzn-Requestid")),
		Err:       err,
	}
	what, fix := explain(herr, e)
	switch said := BodyMessage(herr.Body); {
	case what == "":
		what = cmp.Or(said, "no error message")
	case said != "":
		what += ": " + said
	}
	e.Message = fmt.Sprintf("%s refused with %d %s: %s", call, herr.Status, http.StatusText(herr.Status), what)
	e.Fix = fix
	return e
}

// BodyMessage reads a message from a JSON error body of the usual shapes
// ({message}, {error: string}, {error: {message}}), or "".
func BodyMessage(b []byte) string {
	var v struct {
		Message string          `json:"message"`
		Error   json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	if v.Message != "" {
		return v.Message
	}
	var s string
	if json.Unmarshal(v.Error, &s) == nil {
		return s
	}
	var inner struct {
		Message string `json:"message"`
	}
	json.Unmarshal(v.Error, &inner)
	return inner.Message
}

// PresignedUpload sends body to slot's presigned URL through c, reporting a
// refusal as StorageRefusal does.
func PresignedUpload(ctx context.Context, c *Client, provider string, slot Slot, body Body) error {
	if slot.URL == "" {
		return fmt.Errorf("%s: slot %s has no upload URL", provider, slot.Key)
	}
	if err := c.Upload(ctx, slot, body); err != nil {
		return StorageRefusal(provider, slot.StorageBackend, err)
	}
	return nil
}

// storageFault is the error body of S3 and of Azure Blob Storage.
type storageFault struct {
	Code      string `xml:"Code"`
	Message   string `xml:"Message"`
	RequestID string `xml:"RequestId"`
}

// StorageRefusal reports an upload to a presigned URL that failed; backend
// is the slot's StorageBackend. A refusal is an upstream failure to the
// caller (502), with the storage's own status and code in the message.
func StorageRefusal(provider, backend string, err error) error {
	var herr *HTTPError
	if !errors.As(err, &herr) {
		return fmt.Errorf("%s: uploading to %s: %w", provider, storageName(backend), err)
	}
	var f storageFault
	_ = xml.Unmarshal(herr.Body, &f)
	what := "no error code"
	if f.Code != "" {
		what = strings.TrimSpace(f.Code + ": " + f.Message)
	}
	e := &Error{
		Provider:  provider,
		Status:    http.StatusBadGateway,
		Message:   fmt.Sprintf("%s refused the upload with %d %s (%s)", storageName(backend), herr.Status, http.StatusText(herr.Status), what),
		RequestID: cmp.Or(f.RequestID, herr.Header.Get("X-Amz-Request-Id"), herr.Header.Get("X-Ms-Request-Id")),
		Err:       err,
	}
	switch {
	case herr.Status == http.StatusForbidden:
		e.Fix = "The upload URL was refused (expired, or the request differs from what was signed); stage the file again to get a new URL."
	case f.Code == "BadDigest" || f.Code == "InvalidDigest" || f.Code == "Md5Mismatch":
		e.Fix = "The bytes did not match their MD5; stage the file again."
	case f.Code == "EntityTooLarge" || herr.Status == http.StatusRequestEntityTooLarge:
		e.Fix = "The file is larger than the storage accepts; stage a smaller file."
	default:
		e.Fix = "Try again in a few minutes."
	}
	return e
}

func storageName(backend string) string {
	switch backend {
	case "s3":
		return "S3"
	case "azure_blob_storage":
		return "Azure Blob Storage"
	case "":
		return "the storage"
	}
	return "the " + backend + " storage"
}
