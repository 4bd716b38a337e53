// Package cli runs one tool call from the command line, for people and
// scripts: the answer is JSON on stdout, failures and progress go to
// stderr. It calls the tools' own functions, so a command and a tool call
// take exactly the same path.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/filestage/filestage/internal/redact"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/tools"
)

// ErrFailed is a command's failure, already told on stderr.
var ErrFailed = errors.New("the command failed")

// Stage runs stage_connector_file and prints the descriptor.
func Stage(ctx context.Context, svc *tools.Service, in schema.StageRequest, stdout, stderr io.Writer) error {
	ctx, endBar := withBar(ctx, stderr)
	out, err := svc.Stage(ctx, in)
	endBar()
	return answer(out, err, stdout, stderr)
}

// Presign hashes the file at fileURL and prints the
// request_presigned_upload answer for it.
//
// A URL this process cannot serve itself (the local store's, at
// --public-url or --listen) is only good if a server answers there: when
// nothing does, stderr says what to start.
func Presign(ctx context.Context, svc *tools.Service, fileURL string, in schema.PresignRequest, stdout, stderr io.Writer) error {
	ctx, endBar := withBar(ctx, stderr)
	out, err := svc.PresignFile(ctx, fileURL, in)
	endBar()
	if err := answer(out, err, stdout, stderr); err != nil {
		return err
	}
	if svc.ServedHere != "" && strings.HasPrefix(out.NewPresignedURL, svc.ServedHere) && !answers(ctx, svc.ServedHere) {
		start := "a filestage serve --transport http behind " + svc.ServedHere + " (with this --data-dir)"
		if u, err := url.Parse(svc.ServedHere); err == nil && u.Scheme == "http" && u.Path == "" {
			start = "filestage serve --transport http --listen " + u.Host + " (with this --data-dir)"
		}
		fmt.Fprintf(stderr, "filestage: nothing answers at %s, where this URL points: the upload fails until a filestage on the same data directory listens there:\n  %s\n",
			svc.ServedHere, start)
	}
	return nil
}

// answers reports whether an HTTP server answers at base.
func answers(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, base+"/", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

func answer(out any, err error, stdout, stderr io.Writer) error {
	if err != nil {
		te := tools.AsError(err)
		fmt.Fprintf(stderr, "filestage: %s (%s)\n", te.Message, te.Slug)
		if te.Fix != "" {
			fmt.Fprintf(stderr, "  %s\n", te.Fix)
		}
		return ErrFailed
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // URLs keep their &
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(stderr, "filestage: %v\n", err)
		return ErrFailed
	}
	return nil
}

// withBar draws progress on w when w is a terminal; scripts that capture
// stderr get nothing but errors. end finishes a bar a failure cut short.
func withBar(ctx context.Context, w io.Writer) (_ context.Context, end func()) {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) {
		return ctx, func() {}
	}
	b := &bar{w: w}
	return tools.WithProgress(ctx, b.draw), b.end
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

const barWidth = 30

// bar renders progress as one line redrawn in place.
type bar struct {
	w    io.Writer
	open bool // a line is drawn and not yet ended
}

// Bar returns a progress bar drawing on w.
func Bar(w io.Writer) tools.Progress { return (&bar{w: w}).draw }

func (b *bar) draw(done, total int64, message string) {
	line := message
	if total > 0 {
		// A file that grows while it is read can pass its total.
		done = min(done, total)
		filled := int(done * barWidth / total)
		line = fmt.Sprintf("[%s%s] %3d%%  %s", strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled), done*100/total, message)
	}
	// \x1b[K clears what a longer previous line left.
	fmt.Fprintf(b.w, "\r%s\x1b[K", line)
	b.open = true
	if total > 0 && done >= total {
		b.end()
	}
}

func (b *bar) end() {
	if b.open {
		fmt.Fprintln(b.w)
		b.open = false
	}
}

// Health asks the server at base whether it is up: its /healthz answers
// 200 within five seconds. A base that already names a path is asked as
// it is.
func Health(ctx context.Context, base string, stdout io.Writer) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("health: %q is not a server's URL such as http://127.0.0.1:8080", redact.URL(base))
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	// The server itself: not through a proxy, and a redirect is its
	// answer (a login page's 200 elsewhere says nothing of its health).
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // without the URL again
		}
		return fmt.Errorf("health: %s does not answer: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %s", u.Redacted(), resp.Status)
	}
	fmt.Fprintf(stdout, "%s: ok\n", u.Redacted())
	return nil
}
