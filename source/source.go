// Package source opens the bytes a tool is asked to stage: http(s) URLs
// fetched behind an SSRF guard, file:// URLs below configured roots, and
// data: URLs; and it names and types what it opened.
package source

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"code.dny.dev/ssrf"

	"github.com/filestage/filestage/internal/redact"
)

// Errors a caller can tell apart with errors.Is.
var (
	// ErrScheme: the URL's scheme is not one this package reads, or the
	// URL is not well formed for its scheme.
	ErrScheme = errors.New("unsupported URL")
	// ErrRefused: the URL points at an address filestage must not reach.
	ErrRefused = errors.New("refused: the address is private, loopback, link-local or otherwise not public")
	// ErrTooLarge: the source announced more bytes than the cap.
	ErrTooLarge = errors.New("larger than the byte cap")
	// ErrStatus: the server answered with a status other than 2xx.
	ErrStatus = errors.New("unexpected HTTP status")
	// ErrUnreachable: the source could not be reached or stopped answering.
	ErrUnreachable = errors.New("unreachable")
)

// MaxRedirects is how many redirects a fetch follows.
const MaxRedirects = 5

// Options configure an Opener.
type Options struct {
	// AllowPrivate lifts the SSRF guard, for development and tests only.
	AllowPrivate bool
	// MaxBytes is the largest body accepted.
	MaxBytes int64
	// Timeout bounds a whole fetch, body included; zero means 15 minutes.
	Timeout time.Duration
	// UserAgent is sent with every request.
	UserAgent string
	// FileRoots are the directories file:// URLs may read below. With
	// none, file:// URLs are refused: a hosted server reads no disk.
	FileRoots []string
	// MaxInlineBytes caps the decoded bytes of a data: URL; zero means
	// DefaultMaxInlineBytes.
	MaxInlineBytes int64
	// Stall cuts a fetch whose body sends nothing for this long; zero
	// means DefaultStall.
	Stall time.Duration
	// Resolver looks up the hosts of http(s) URLs; nil means
	// net.DefaultResolver. The guard checks the addresses it returns as
	// they are dialled, so a resolver cannot get around it.
	Resolver *net.Resolver
	// DenyCIDRs are networks refused like private ones, on top of the
	// special-purpose ranges: the operator's own public ranges, say.
	DenyCIDRs []netip.Prefix
	// LocalAddrs lists the machine's own addresses, which are refused
	// like private ones; nil means those of its network interfaces. It is
	// called again when its last answer is 30 seconds old.
	LocalAddrs func() ([]netip.Addr, error)
	// DenyDirs are directories file:// URLs may never read below, even
	// inside a root: filestage's own data (its signing key, stored
	// objects, other calls' spool files).
	DenyDirs []string
}

// DefaultStall is how long a source may send nothing before its fetch is
// cut.
const DefaultStall = time.Minute

// DefaultMaxInlineBytes is the default cap of a data: URL's decoded bytes.
const DefaultMaxInlineBytes = 1 << 20

// Opener opens source URLs. Every connection it makes for an http(s) URL,
// redirects included, is checked at dial time against the resolved
// address, so a DNS answer that changes between check and connect does not
// get around it.
type Opener struct {
	client *http.Client
	opts   Options
	// guard is nil when private addresses are allowed.
	guard   *guard
	timeout time.Duration
	stall   time.Duration
	roots   []string
	// dialer is the transport's, kept so that tests can make sure that
	// nothing past the guard leaves loopback.
	dialer *net.Dialer
	// deny are Options.DenyDirs, absolute; they are resolved on each use,
	// as they may not exist yet or be moved behind a symlink later.
	deny []string
}

// New returns an Opener with its own HTTP transport. It fails when a file
// root is not a directory.
func New(o Options) (*Opener, error) {
	roots, err := resolveRoots(o.FileRoots)
	if err != nil {
		return nil, err
	}
	deny, err := absDirs(o.DenyDirs)
	if err != nil {
		return nil, err
	}
	if o.MaxInlineBytes <= 0 {
		o.MaxInlineBytes = DefaultMaxInlineBytes
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: o.Resolver}
	var g *guard
	if !o.AllowPrivate {
		g = newGuard(o)
		dialer.Control = g.control
	}
	tr := &http.Transport{
		// No proxy: a proxy would make the guard check the proxy's address
		// instead of the destination's.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          16,
		ForceAttemptHTTP2:     true,
		// The bytes stored must be the bytes served: decoding a
		// Content-Encoding would turn a small gzip bomb into a huge object,
		// skip the Content-Length check and hash other bytes than the
		// server's. Accept-Encoding: identity is sent too (see fetch).
		DisableCompression: true,
	}
	f := &Opener{opts: o, guard: g, timeout: o.Timeout, stall: cmp.Or(o.Stall, DefaultStall), roots: roots, deny: deny, dialer: dialer}
	if f.timeout == 0 {
		f.timeout = 15 * time.Minute
	}
	f.client = &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if r, ok := req.Context().Value(redirectedKey{}).(*bool); ok {
				*r = true
			}
			if len(via) > MaxRedirects {
				return fmt.Errorf("more than %d redirects", MaxRedirects)
			}
			if n := len(req.URL.String()); n > MaxURLBytes {
				return fmt.Errorf("%w: a redirect's URL is %d bytes, longer than the %d-byte limit", ErrScheme, n, MaxURLBytes)
			}
			if err := checkScheme(req.URL); err != nil {
				return fmt.Errorf("redirect to %s: %w", redact.URL(req.URL.String()), err)
			}
			if req.URL.User != nil {
				// As ParseURL refuses it: the client would send the
				// credentials on as basic auth.
				return fmt.Errorf("%w: a redirect's URL has a user name or password (user@ before the host); filestage fetches public URLs without credentials", ErrScheme)
			}
			// The client sets Referer to the URL redirected from, query
			// included: a presigned URL's signature would go to whatever
			// host the redirect names.
			req.Header.Del("Referer")
			if f.guard != nil {
				if err := f.guard.checkHost(req.URL); err != nil {
					return err
				}
			}
			return nil
		},
	}
	return f, nil
}

// Source is an opened body and what its origin said about it.
type Source struct {
	Body io.ReadCloser
	// Size is the announced length (a server's Content-Length, a file's
	// size), or -1.
	Size int64
	// ContentType is the server's Content-Type or the data: URL's media
	// type: a hint only.
	ContentType string
	// Name is the filename from Content-Disposition, else the last URL
	// path segment, a file's name or a data: URL's name parameter; empty
	// when none gives one.
	Name string
	// At reads the same bytes again, from any offset, for sources that
	// can (local files, inline data): they need no spool copy.
	At io.ReaderAt
}

// checkScheme admits http(s) only: where a redirect may lead.
func checkScheme(u *url.URL) error {
	switch u.Scheme {
	case "http", "https":
		return nil
	}
	return fmt.Errorf("%w scheme %q: use an http:// or https:// URL", ErrScheme, u.Scheme)
}

// ParseURL parses a source URL and checks that this package can read it.
// A data: URL is only recognised here; Open decodes it.
func ParseURL(rawURL string) (*url.URL, error) {
	if isData(rawURL) {
		return &url.URL{Scheme: "data"}, nil
	}
	if len(rawURL) > MaxURLBytes {
		// Said without repeating the URL: it would flood logs and replies.
		return nil, fmt.Errorf("%w: the URL is %d bytes, longer than the %d-byte limit; pass a shorter URL, or small content inline as a data: URL", ErrScheme, len(rawURL), MaxURLBytes)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the URL, query (a signature, maybe) included.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("%w: %v", ErrScheme, err)
	}
	switch u.Scheme {
	case "":
		return nil, fmt.Errorf("%w: not an absolute URL; give a full one such as https://example.com/report.pdf or file:///home/me/report.pdf", ErrScheme)
	case "file":
		return u, nil
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("%w: the URL has no host", ErrScheme)
		}
		if u.User != nil {
			// http://public.example@127.0.0.1/ and http://127.0.0.1@evil/
			// read differently to people and parsers, and credentials would
			// be sent on to whichever host it is.
			return nil, fmt.Errorf("%w: the URL has a user name or password (user@ before the host); filestage fetches public URLs without credentials", ErrScheme)
		}
		return u, nil
	}
	return nil, fmt.Errorf("%w scheme %q: use an http(s), file:// or data: URL", ErrScheme, u.Scheme)
}

// Open opens rawURL. The caller must close the Body; a fetch's time limit
// covers reading it.
func (f *Opener) Open(ctx context.Context, rawURL string) (*Source, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "data":
		return openData(rawURL, f.opts.MaxInlineBytes)
	case "file":
		return f.openFile(u)
	}
	return f.fetch(ctx, u)
}

// CheckPublic checks a URL that ParseURL accepted as a fetch would before
// connecting, for a provider that fetches URLs itself: the scheme, the
// host's spelling, and every address the host resolves to now. A refusal
// is ErrRefused and names the kind of address, never the address; a host
// that does not resolve is ErrUnreachable. With AllowPrivate it checks
// nothing. The provider resolves the name again later and may get another
// answer: this narrows what it can be sent to, it does not pin it.
func (f *Opener) CheckPublic(ctx context.Context, u *url.URL) error {
	if f.guard == nil {
		return nil
	}
	// ParseURL checked the length, the host and credentials; it also
	// accepts file: and data:, which a fetch does not.
	if err := checkScheme(u); err != nil {
		return err
	}
	if err := f.guard.checkHost(u); err != nil {
		return err
	}
	host := strings.ToLower(foldHost(u.Hostname()))
	if _, err := netip.ParseAddr(host); err == nil {
		return nil // checkHost judged the address itself
	}
	resolver := f.opts.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	addrs, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return classify(err, false)
	}
	for _, a := range addrs {
		if why := f.guard.refuses(a); why != "" {
			return refusal{reason: why, resolved: true}
		}
	}
	return nil
}

// redirectedKey marks a fetch's context with a *bool that CheckRedirect
// sets, so that a refusal can say a redirect led there.
type redirectedKey struct{}

// fetch GETs an http(s) URL.
func (f *Opener) fetch(ctx context.Context, u *url.URL) (*Source, error) {
	if f.guard != nil {
		if err := f.guard.checkHost(u); err != nil {
			return nil, err
		}
	}
	redirected := new(bool)
	ctx = context.WithValue(ctx, redirectedKey{}, redirected)
	ctx, stalled := context.WithCancelCause(ctx)
	ctx, cancelTimeout := context.WithTimeout(ctx, f.timeout)
	cancel := func() { cancelTimeout(); stalled(nil) }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: %v", ErrScheme, err)
	}
	if f.opts.UserAgent != "" {
		req.Header.Set("User-Agent", f.opts.UserAgent)
	}
	// Asked for explicitly: with DisableCompression the transport asks for
	// nothing, and some servers then pick gzip themselves. A server that
	// encodes anyway is stored as served.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := f.client.Do(req)
	if err != nil {
		cancel()
		return nil, classify(err, *redirected)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("%w %s from %s", ErrStatus, resp.Status, redact.URL(resp.Request.URL.String()))
	}
	if f.opts.MaxBytes > 0 && resp.ContentLength > f.opts.MaxBytes {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("%w: the server announced %d bytes, the cap is %d", ErrTooLarge, resp.ContentLength, f.opts.MaxBytes)
	}
	b := &body{ReadCloser: resp.Body, cancel: cancel, ctx: ctx, stall: f.stall}
	// A source that stops sending is cut long before the fetch timeout:
	// it would hold a stage slot and its spool room for all of it.
	b.timer = time.AfterFunc(f.stall, func() { stalled(errStalled{f.stall}) })
	return &Source{
		Body:        b,
		Size:        resp.ContentLength,
		ContentType: resp.Header.Get("Content-Type"),
		Name:        nameFrom(resp.Header.Get("Content-Disposition"), resp.Request.URL),
	}, nil
}

// classify turns a client error into one of the package's errors, keeping
// the cause in the chain; redirected says a redirect was followed, so a
// refusal can say so.
func classify(err error, redirected bool) error {
	// A *url.Error repeats the whole URL, and the last one of a redirect
	// chain may be presigned: keep only what went wrong.
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if errors.Is(err, ErrScheme) {
		return err
	}
	if r, ok := asRefusal(err); ok {
		r.redirect = r.redirect || redirected
		return r
	}
	for _, refused := range []error{ssrf.ErrProhibitedIP, ssrf.ErrProhibitedPort, ssrf.ErrProhibitedNetwork, ssrf.ErrInvalidHostPort} {
		if errors.Is(err, refused) {
			return refusal{reason: "not a public address", redirect: redirected, cause: err}
		}
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		err = lookupFailure{dns}
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, addrless(err))
}

// addrless hides the addresses in a network error's text: a
// *net.OpError prints both ends of the connection ("read tcp
// 10.0.0.5:43210->1.2.3.4:80: connection reset by peer"), the server's
// own address and port among them. What went wrong is kept, and so is
// the error chain.
func addrless(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		what := op.Err
		var sys *os.SyscallError
		if errors.As(what, &sys) {
			what = sys.Err // "read: connection reset by peer", not "read: read: ..."
		}
		msg = strings.Replace(msg, op.Error(), op.Op+": "+what.Error(), 1)
	}
	if msg = redact.Addrs(msg); msg == err.Error() {
		return err
	}
	return scrubbed{msg: msg, err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (s scrubbed) Error() string { return s.msg }
func (s scrubbed) Unwrap() error { return s.err }

// lookupFailure is a failed DNS lookup that does not print the resolver's
// address, as net.DNSError does ("on 10.255.255.53:53"): it would map the
// server's own network for a caller.
type lookupFailure struct{ err *net.DNSError }

func (l lookupFailure) Error() string {
	switch {
	case l.err.IsNotFound:
		return "lookup " + l.err.Name + ": no such host"
	case l.err.IsTimeout:
		return "lookup " + l.err.Name + ": timed out"
	}
	return "lookup " + l.err.Name + ": the name could not be resolved"
}

func (l lookupFailure) Unwrap() error { return l.err }

type body struct {
	io.ReadCloser
	cancel context.CancelFunc
	ctx    context.Context
	// timer cuts the fetch when no byte has come for stall.
	timer *time.Timer
	stall time.Duration
}

// errStalled: the source sent nothing for a while; a timeout to callers.
type errStalled struct{ after time.Duration }

func (e errStalled) Error() string {
	return fmt.Sprintf("the source sent nothing for %v", e.after)
}
func (errStalled) Unwrap() error { return context.DeadlineExceeded }

// Read reports a connection that fails mid-body as ErrUnreachable, without
// its addresses: the error reaches the caller through the spool.
func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.timer.Reset(b.stall)
	}
	if err != nil && err != io.EOF {
		if cause, ok := context.Cause(b.ctx).(errStalled); ok {
			return n, cause
		}
		err = fmt.Errorf("%w: %w", ErrUnreachable, addrless(err))
	}
	return n, err
}

func (b *body) Close() error {
	b.timer.Stop()
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// nameFrom prefers the server's Content-Disposition filename, then the last
// segment of the final URL's path.
func nameFrom(disposition string, u *url.URL) string {
	if _, params, err := mime.ParseMediaType(disposition); err == nil {
		if n := SanitizeName(params["filename"]); n != "" {
			return n
		}
	}
	return SanitizeName(path.Base(u.Path))
}
