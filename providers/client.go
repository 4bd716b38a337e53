package providers

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/filestage/filestage/internal/redact"
)

// Client is the one HTTP client every provider uses: timeouts, and retries
// with exponential backoff and full jitter on 429, on 5xx other than 501 and
// on connection errors, honouring Retry-After up to MaxDelay. A request is
// built afresh for every attempt, so bodies are replayed from their source
// (the spool), never re-read from where the bytes came from.
type Client struct {
	HTTP *http.Client
	// Retries is how many times a failed attempt is repeated.
	Retries int
	// BaseDelay is the first backoff; each retry doubles it.
	BaseDelay time.Duration
	// MaxDelay caps every wait, Retry-After included.
	MaxDelay time.Duration
	// UserAgent is sent with every request.
	UserAgent string
	// Attempted, when set, learns how each attempt ended: op is OpAPI or
	// OpUpload, outcome AttemptOK, AttemptRetry (it failed and is made
	// again) or AttemptError (it failed and the client gives up).
	Attempted func(op, outcome string)
	// sleep waits d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewClient returns a Client with production timeouts and retry settings.
func NewClient(userAgent string) *Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &Client{
		HTTP: &http.Client{
			// Neither API calls nor presigned PUTs redirect; following one
			// would carry X-Api-Key to another host and turn a POST into a GET.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           dialer.DialContext,
				TLSHandshakeTimeout:   10 * time.Second,
				ResponseHeaderTimeout: 60 * time.Second,
				ExpectContinueTimeout: time.Second,
				IdleConnTimeout:       90 * time.Second,
				MaxIdleConnsPerHost:   8,
				ForceAttemptHTTP2:     true,
			}},
		Retries:   4,
		BaseDelay: 250 * time.Millisecond,
		MaxDelay:  10 * time.Second,
		UserAgent: userAgent,
	}
}

// HTTPError is a non-2xx answer that survived the retries.
type HTTPError struct {
	Method string
	URL    string // without its query, which may hold a signature
	Status int
	Header http.Header
	Body   []byte // at most 64 KiB
}

func (e *HTTPError) Error() string {
	msg := strings.TrimSpace(string(e.Body))
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.URL, e.Status, http.StatusText(e.Status), msg)
}

// Retryable reports whether a status is worth another attempt.
func Retryable(status int) bool {
	return status == http.StatusTooManyRequests || (status >= 500 && status != http.StatusNotImplemented)
}

// Ops and outcomes of an attempt, for Attempted.
const (
	OpAPI        = "api"
	OpUpload     = "upload"
	AttemptOK    = "ok"
	AttemptRetry = "retry"
	AttemptError = "error"
)

// Do sends the request newReq builds, once per attempt, and returns the
// first 2xx response. A non-2xx answer is returned as *HTTPError.
func (c *Client) Do(ctx context.Context, newReq func(ctx context.Context) (*http.Request, error)) (*http.Response, error) {
	return c.do(ctx, OpAPI, newReq)
}

func (c *Client) do(ctx context.Context, op string, newReq func(ctx context.Context) (*http.Request, error)) (*http.Response, error) {
	attempted := func(outcome string) {
		if c.Attempted != nil {
			c.Attempted(op, outcome)
		}
	}
	sleep := c.sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	for attempt := 0; ; attempt++ {
		req, err := newReq(ctx)
		if err != nil {
			return nil, err
		}
		if c.UserAgent != "" && req.Header.Get("User-Agent") == "" {
			req.Header.Set("User-Agent", c.UserAgent)
		}
		// The platform continues the call's trace, when filestage traces
		// it: its own span's traceparent, and no tracestate a client
		// may have sent.
		if trace.SpanFromContext(req.Context()).IsRecording() {
			propagation.TraceContext{}.Inject(req.Context(), propagation.HeaderCarrier(req.Header))
			req.Header.Del("Tracestate")
		}
		resp, err := c.HTTP.Do(req)
		var wait time.Duration
		switch {
		case err != nil:
			// A *url.Error repeats the whole URL, and a presigned URL's
			// query is a credential: keep only what went wrong.
			var uerr *url.Error
			if errors.As(err, &uerr) {
				err = uerr.Err
			}
			if ctx.Err() != nil || attempt >= c.Retries || !transient(err) {
				attempted(AttemptError)
				return nil, fmt.Errorf("%s %s: %w", req.Method, redactReq(req), err)
			}
		case resp.StatusCode >= 200 && resp.StatusCode <= 299:
			attempted(AttemptOK)
			return resp, nil
		default:
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			herr := &HTTPError{Method: req.Method, URL: redactReq(req), Status: resp.StatusCode, Header: resp.Header, Body: body}
			if !Retryable(resp.StatusCode) || attempt >= c.Retries {
				attempted(AttemptError)
				return nil, herr
			}
			wait = retryAfter(resp.Header.Get("Retry-After"))
		}
		attempted(AttemptRetry)
		if wait == 0 {
			// Full jitter: a random wait up to the exponential step.
			wait = time.Duration(rand.Int64N(int64(c.BaseDelay<<attempt) + 1))
		}
		if err := sleep(ctx, min(wait, c.MaxDelay)); err != nil {
			return nil, err
		}
	}
}

// JSON sends in as a JSON body (none when in is nil) and decodes a 2xx
// answer into out (skipped when out is nil).
func (c *Client) JSON(ctx context.Context, method, url string, header http.Header, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	resp, err := c.Do(ctx, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		for k, vs := range header {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		req.Header.Set("Accept", "application/json")
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, nil
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: malformed JSON answer: %w", method, redact.URL(url), err)
	}
	return nil
}

// Upload PUTs body to a presigned slot with exactly the slot's method and
// headers, replaying the body from the start on every attempt. It returns
// nil only for a 2xx answer.
func (c *Client) Upload(ctx context.Context, slot Slot, body Body) error {
	method := slot.Method
	if method == "" {
		method = http.MethodPut
	}
	resp, err := c.do(ctx, OpUpload, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, method, slot.URL, body.Reader())
		if err != nil {
			return nil, err
		}
		req.ContentLength = body.Size
		if body.Size == 0 {
			req.Body = http.NoBody
		}
		for k, v := range slot.Headers {
			req.Header.Set(k, v)
		}
		return req, nil
	})
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return checkStored(resp.Header, slot.StorageBackend, body.MD5)
}

// ErrNotStored marks a 2xx upload answer that does not show the bytes were
// stored.
var ErrNotStored = errors.New("the storage's answer does not show the bytes were stored")

// checkStored reads what a storage's answer to a PUT says it stored,
// where it says anything: Azure's Put Blob answers with the Content-MD5 it
// computed, and S3 always names the object it stored with an ETag (not
// always the MD5: not under SSE-KMS, so only its presence is checked). A
// proxy or a gateway that answers 200 without storing is caught here.
func checkStored(h http.Header, backend string, sum [16]byte) error {
	if v := h.Get("Content-MD5"); backend == "azure_blob_storage" && v != "" && v != ContentMD5(sum) {
		return fmt.Errorf("%w: it reports Content-MD5 %s for bytes whose MD5 is %s", ErrNotStored, v, ContentMD5(sum))
	}
	if backend == "s3" && h.Get("ETag") == "" {
		return fmt.Errorf("%w: S3 answered without an ETag", ErrNotStored)
	}
	return nil
}

// transient reports whether a connection error may go away on its own: an
// unknown host or a certificate that does not verify will not.
func transient(err error) bool {
	var dns *net.DNSError
	var cert *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &dns) && dns.IsNotFound,
		errors.As(err, &cert), errors.As(err, &unknownCA), errors.As(err, &hostname):
		return false
	}
	return true
}

// ContentMD5 is the Content-MD5 header value of a digest (RFC 1864).
func ContentMD5(sum [16]byte) string { return base64.StdEncoding.EncodeToString(sum[:]) }

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// redactReq is the request URL without its query, which for presigned URLs
// carries the signature.
func redactReq(req *http.Request) string { return redact.URL(req.URL.String()) }

// ErrUnsupported marks an operation a provider cannot do; its message says
// which provider can.
var ErrUnsupported = errors.New("not supported by this provider")

// Error is a failure the platform itself reported, kept for the user: the
// tools pass Status, Slug, Fix and RequestID through to the tool error.
type Error struct {
	Provider  string
	Status    int
	Slug      string
	Message   string
	Fix       string
	RequestID string
	Errors    []string
	Err       error
}

func (e *Error) Error() string { return e.Provider + ": " + e.Message }
func (e *Error) Unwrap() error { return e.Err }
