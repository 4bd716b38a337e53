// Package cli runs one tool call from the command line, for people and
// scripts: the answer is JSON on stdout, failures and progress go to
// stderr. It calls the tools' own functions, so a command and a tool call
// take exactly the same path.
package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/tools"
)

// Stage runs stage_connector_file and prints the descriptor; the exit
// code is 0 on success, 1 on failure.
func Stage(ctx context.Context, svc *tools.Service, in schema.StageRequest, stdout, stderr io.Writer) int {
	out, err := svc.Stage(withBar(ctx, stderr), in)
	return answer(out, err, stdout, stderr)
}

// Presign hashes the file at fileURL and prints the
// request_presigned_upload answer for it.
func Presign(ctx context.Context, svc *tools.Service, fileURL string, in schema.PresignRequest, stdout, stderr io.Writer) int {
	out, err := svc.PresignFile(withBar(ctx, stderr), fileURL, in)
	return answer(out, err, stdout, stderr)
}

func answer(out any, err error, stdout, stderr io.Writer) int {
	if err != nil {
		te := tools.AsError(err)
		fmt.Fprintf(stderr, "filestage: %s (%s)\n", te.Message, te.Slug)
		if te.Fix != "" {
			fmt.Fprintf(stderr, "  %s\n", te.Fix)
		}
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // URLs keep their &
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(stderr, "filestage: %v\n", err)
		return 1
	}
	return 0
}

// withBar draws progress on w when w is a terminal; scripts that capture
// stderr get nothing but errors.
func withBar(ctx context.Context, w io.Writer) context.Context {
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		return tools.WithProgress(ctx, Bar(w))
	}
	return ctx
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

const barWidth = 30

// Bar renders progress as one line redrawn in place, ended by a new line
// once done reaches total.
func Bar(w io.Writer) tools.Progress {
	return func(done, total int64, message string) {
		var line string
		if total > 0 {
			filled := int(done * barWidth / total)
			line = fmt.Sprintf("[%s%s] %3d%%  %s", strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled), done*100/total, message)
		} else {
			line = message
		}
		end := ""
		if total > 0 && done >= total {
			end = "\n"
		}
		// \x1b[K clears what a longer previous line left.
		fmt.Fprintf(w, "\r%s\x1b[K%s", line, end)
	}
}
