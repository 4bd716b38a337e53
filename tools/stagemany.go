package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/internal/redact"
	"github.com/filestage/filestage/schema"
)

// StageManyName is the tool's name.
const StageManyName = "stage_connector_files"

const (
	// MaxStageManyFiles is the most files one stage_connector_files call
	// takes.
	MaxStageManyFiles = 20
	// stageManyParallel is the most files one call stages at once; each
	// still takes a server and a caller stage slot, so one call never
	// holds more than this many of them.
	stageManyParallel = 4
)

// StageManyTool describes stage_connector_files.
func StageManyTool() mcp.Tool {
	return newTool(StageManyName, "Stage several files for a connector action",
		"Stage 1 to 20 files into connector storage in one call, for a connector action that takes several files (an array of file_uploadable, e.g. attachments). "+
			"Each file is {url, filename?}, read as stage_connector_file reads its url. "+
			"The answer's files is the array of descriptors {name, mimetype, s3key} of the files staged, in the order given: pass it as-is as the action's file_uploadable array argument. "+
			"A file that failed has no descriptor: success is false, and errors names it by index (its position in files, from 0) with the reason and the fix; results gives each index's status. "+
			"Before calling the action, fix and stage the failed files again (with this tool or stage_connector_file) and add their descriptors, or tell the user which files are missing. "+
			"When no file could be staged, the call is a tool error listing each index's failure. "+
			"Send a progressToken to get progress notifications summed over the files.",
		schema.For[schema.StageManyRequest](), schema.For[schema.StageManyResponse]())
}

// stageManyArgs are stage_connector_files' arguments as they arrive: files
// is read by decodeFiles, so that a mistake in it names the file's index.
type stageManyArgs struct {
	Files       json.RawMessage `json:"files"`
	ToolSlug    string          `json:"toolSlug"`
	ToolkitSlug string          `json:"toolkitSlug"`
}

// stageFiles is the tool's handler function.
func (s *Service) stageFiles(ctx context.Context, in stageManyArgs) (schema.StageManyResponse, error) {
	files, err := decodeFiles(in.Files)
	if err != nil {
		return schema.StageManyResponse{}, err
	}
	return s.StageMany(ctx, schema.StageManyRequest{Files: files, ToolSlug: in.ToolSlug, ToolkitSlug: in.ToolkitSlug})
}

const filesFix = `Pass files as a JSON array of 1 to 20 objects (not a string holding one), e.g. [{"url": "https://example.com/a.pdf"}, {"url": "https://example.com/b.png", "filename": "chart.png"}].`

// decodeFiles reads files strictly, naming the index of a bad item:
// files[3].url.
func decodeFiles(raw json.RawMessage) ([]schema.StageManyFile, error) {
	if raw == nil {
		return nil, invalid("files", "is required", filesFix)
	}
	if k := jsonKind(raw); k != "array" {
		return nil, invalid("files", "must be an array of {url, filename} objects, "+gotKind(k), filesFix)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalid("files", "is not valid JSON: "+err.Error(), filesFix)
	}
	switch {
	case len(items) == 0:
		return nil, invalid("files", "is empty", filesFix)
	case len(items) > MaxStageManyFiles:
		return nil, invalid("files", fmt.Sprintf("has %d files; one call stages at most %d", len(items), MaxStageManyFiles),
			fmt.Sprintf("Split the files into calls of at most %d, and use each call's files array.", MaxStageManyFiles))
	}
	files := make([]schema.StageManyFile, len(items))
	for i, item := range items {
		at := "files[" + strconv.Itoa(i) + "]"
		if k := jsonKind(item); k != "object" {
			return nil, invalid(at, "must be an object {url, filename}, "+gotKind(k), `Pass each file as {"url": "https://example.com/a.pdf"}, with an optional "filename".`)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(item, &fields); err != nil {
			return nil, invalid(at, "is not valid JSON: "+err.Error(), filesFix)
		}
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range fields {
				if !yield(k) {
					return
				}
			}
		}) {
			v := fields[name]
			var dst *string
			switch name {
			case "url":
				dst = &files[i].URL
			case "filename":
				dst = &files[i].Filename
			default:
				return nil, invalid(at+"."+fieldName(name), "is not a field of a file", "Each file takes url and, optionally, filename; toolSlug and toolkitSlug go beside files, once for all of them.")
			}
			// null is as good as absent, as for stage_connector_file.
			if k := jsonKind(v); k != "string" && k != "null" {
				return nil, invalid(at+"."+name, "must be a string, "+gotKind(k), "Pass "+at+"."+name+" as a string.")
			}
			if err := json.Unmarshal(v, dst); err != nil {
				return nil, invalid(at+"."+name, "is not a valid JSON string: "+err.Error(), "Pass "+at+"."+name+" as a string.")
			}
		}
	}
	return files, nil
}

// jsonKind names the kind of JSON value raw holds.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// gotKind says what came instead, as decodeArgs says it.
func gotKind(kind string) string {
	if kind == "null" || kind == "nothing" {
		return "got " + kind
	}
	return "got a JSON " + kind
}

// plainField matches field names that read well unquoted.
var plainField = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// fieldName is an unknown field's name as a message shows it: quoted
// unless plain, and cut short.
func fieldName(name string) string {
	if plainField.MatchString(name) {
		return name
	}
	if len(name) > 64 {
		name = strings.ToValidUTF8(name[:64], "") + "…"
	}
	return strconv.Quote(name)
}

// StageMany stages in.Files concurrently, a few at a time, each through
// Stage with its limits, and answers the descriptors of those staged, in
// order, and why each other one failed. It fails as a whole only for bad
// arguments, or when no file was staged.
func (s *Service) StageMany(ctx context.Context, in schema.StageManyRequest) (schema.StageManyResponse, error) {
	p := auth.FromContext(ctx)
	if scope := s.stageManyScope(); scope != "" && !p.Allows(scope) {
		return schema.StageManyResponse{}, &Error{Status: 403, Slug: "INSUFFICIENT_SCOPE",
			Message: "calling " + StageManyName + " needs scope " + scope + ", which this client's token does not grant",
			Fix:     "Get a token with scope " + scope + "."}
	}
	switch n := len(in.Files); {
	case n == 0:
		return schema.StageManyResponse{}, invalid("files", "is empty", filesFix)
	case n > MaxStageManyFiles:
		return schema.StageManyResponse{}, invalid("files", fmt.Sprintf("has %d files; one call stages at most %d", n, MaxStageManyFiles),
			fmt.Sprintf("Split the files into calls of at most %d, and use each call's files array.", MaxStageManyFiles))
	}
	for i, f := range in.Files {
		if strings.TrimSpace(f.URL) == "" {
			return schema.StageManyResponse{}, invalid(fmt.Sprintf("files[%d].url", i), "is required", "Pass the file's http(s) URL, its file:// URL, or its bytes as a data: URL.")
		}
	}
	// What is the same for every file is checked once: a bad slug is one
	// mistake, not twenty failed files.
	if _, err := checkToolSlug("toolSlug", in.ToolSlug); err != nil {
		return schema.StageManyResponse{}, err
	}
	if in.ToolkitSlug != "" {
		if _, err := checkToolkitSlug("toolkitSlug", in.ToolkitSlug); err != nil {
			return schema.StageManyResponse{}, err
		}
	}

	n := len(in.Files)
	staged := make([]schema.StageResponse, n)
	failed := make([]error, n)
	sum := startProgressSum(ctx, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range s.stageManyWorkers(p, n) {
		// Each worker stages one file at a time, and Stage gives back its
		// slots before it returns: the call never waits on itself.
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := ctx.Err(); err != nil {
					failed[i] = cancelled(err)
				} else {
					staged[i], failed[i] = s.stageOne(sum.context(ctx, i), in, i)
				}
				sum.settle(i)
			}
		})
	}
	wg.Wait()

	out := schema.StageManyResponse{Success: true, Files: []schema.Descriptor{}, Results: make([]schema.StageManyResult, n)}
	for i, err := range failed {
		if err == nil {
			r := staged[i]
			out.Files = append(out.Files, schema.Descriptor{Name: r.Name, Mimetype: r.Mimetype, S3Key: r.S3Key})
			out.Results[i] = schema.StageManyResult{Index: i, Status: "staged", Name: r.Name, Mimetype: r.Mimetype, S3Key: r.S3Key, Size: r.Size, MD5: r.MD5, Type: r.Type,
				FileID: r.FileID, ReadBack: r.ReadBack}
			continue
		}
		te := AsError(err)
		level := slog.LevelInfo
		if te.Status >= 500 {
			level = slog.LevelWarn
		}
		s.Logger.Log(ctx, level, "file failed", "client", p.Name, "tool", StageManyName, "index", i, "slug", te.Slug, "status", te.Status, "message", te.Message)
		out.Success = false
		out.Results[i] = schema.StageManyResult{Index: i, Status: "failed"}
		out.Errors = append(out.Errors, fileError(i, in.Files[i].URL, te))
	}
	sum.stop(len(out.Files))
	if len(out.Files) == 0 {
		return schema.StageManyResponse{}, nothingStaged(failed, out.Errors)
	}
	return out, nil
}

// stageOne stages file i; a panic fails that file alone.
func (s *Service) stageOne(ctx context.Context, in schema.StageManyRequest, i int) (out schema.StageResponse, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.Logger.ErrorContext(ctx, "panic staging a file", "tool", StageManyName, "index", i, "panic", r)
			out, err = schema.StageResponse{}, fmt.Errorf("internal error: %v", r)
		}
	}()
	return s.Stage(ctx, schema.StageRequest{URL: in.Files[i].URL, Filename: in.Files[i].Filename, ToolSlug: in.ToolSlug, ToolkitSlug: in.ToolkitSlug})
}

// stageManyScope is the scope the tool needs: its own when one is named,
// else stage_connector_file's, since it stages files just the same.
func (s *Service) stageManyScope() string {
	if scope, ok := s.Scopes[StageManyName]; ok {
		return scope
	}
	return s.Scopes[StageName]
}

// stageManyWorkers is how many of a call's files are staged at once: a
// few, and never more than the server's or the caller's stage slots, so
// that no file of the call waits for a slot another file of the same call
// holds, and is refused BUSY for it.
func (s *Service) stageManyWorkers(p *auth.Principal, n int) int {
	w := min(n, stageManyParallel)
	if s.Stages != nil {
		w = min(w, cap(s.Stages))
	}
	if limit := s.Callers.stageLimit(p); limit > 0 {
		w = min(w, limit)
	}
	return max(w, 1)
}

// urlPattern finds the http(s) URLs an error message quotes.
var urlPattern = regexp.MustCompile(`(?i)\bhttps?://[^\s"'<>]+`)

// fileError is file i's failure as the answer lists it: the field named
// with its index, and the URL not repeated (the caller knows it by index;
// it may be long, or carry a token in its query).
func fileError(i int, rawURL string, te *Error) schema.StageManyError {
	at := "files[" + strconv.Itoa(i) + "]"
	msg := te.Message
	switch {
	case strings.HasPrefix(msg, "url: "):
		msg = at + ".url: " + strings.TrimPrefix(msg, "url: ")
	case strings.HasPrefix(msg, "filename: "):
		msg = at + ".filename: " + strings.TrimPrefix(msg, "filename: ")
	default:
		msg = at + ": " + msg
	}
	return schema.StageManyError{Index: i, Slug: te.Slug, Message: redact.Addrs(withoutURL(msg, rawURL)), SuggestedFix: redact.Addrs(te.Fix)}
}

// withoutURL says "the URL" where msg quotes rawURL, and "another URL" for
// any other http(s) URL (where a redirect led).
func withoutURL(msg, rawURL string) string {
	rawURL = strings.TrimSpace(rawURL)
	for _, u := range []string{rawURL, redact.URL(rawURL)} {
		if len(u) > len("x://") {
			msg = strings.ReplaceAll(msg, u, "the URL")
		}
	}
	return urlPattern.ReplaceAllString(msg, "another URL")
}

// nothingStaged is the tool error of a call none of whose files was
// staged: the files' own slug when they all failed alike.
func nothingStaged(failed []error, errs []schema.StageManyError) *Error {
	first := AsError(failed[0])
	e := &Error{Status: first.Status, Slug: first.Slug, Fix: first.Fix}
	lines := make([]string, len(errs))
	msgs := make([]string, len(errs))
	clientSide := true
	for i, fe := range errs {
		te := AsError(failed[fe.Index])
		if te.Slug != e.Slug {
			e.Slug, e.Fix = "NOTHING_STAGED", "Fix each file as errors says, by index, and call again with those files."
		}
		clientSide = clientSide && te.Status < 500
		msgs[i] = fe.Message
		lines[i] = fe.Message + " (" + fe.Slug + "): " + fe.SuggestedFix
	}
	if e.Slug == "NOTHING_STAGED" {
		e.Status = 502
		if clientSide {
			e.Status = 400
		}
	}
	e.Message = fmt.Sprintf("none of the %d files was staged: %s", len(errs), strings.Join(msgs, "; "))
	if len(errs) == 1 {
		e.Message = "the file was not staged: " + msgs[0]
	}
	e.Errors = lines
	return e
}

// progressSum reports a call's progress as the sum over its files: each
// file's stage reports to it as to its own call, and it reports the sums
// to the call's Progress at most every progressInterval.
type progressSum struct {
	report Progress
	n      int

	mu      sync.Mutex
	done    []int64
	total   []int64 // -1 until known
	settled int
	message string

	quit, exited chan struct{}
	// last is the last done reported; only the reporting goroutine
	// writes it, and stop reads it once that has exited.
	last int64
}

// startProgressSum starts summing for ctx's Progress; nil (which does
// nothing) when the call asked for none.
func startProgressSum(ctx context.Context, n int) *progressSum {
	report, _ := ctx.Value(progressKey{}).(Progress)
	if report == nil {
		return nil
	}
	a := &progressSum{report: report, n: n, done: make([]int64, n), total: make([]int64, n),
		quit: make(chan struct{}), exited: make(chan struct{})}
	for i := range a.total {
		a.total[i] = -1
	}
	go func() {
		defer close(a.exited)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-a.quit:
				return
			case <-t.C:
				if done, total, msg := a.state(); done > a.last {
					a.last = done
					a.report(done, total, msg)
				}
			}
		}
	}()
	return a
}

// context is ctx with file i's stage reporting to a.
func (a *progressSum) context(ctx context.Context, i int) context.Context {
	if a == nil {
		return ctx
	}
	return WithProgress(ctx, func(done, total int64, message string) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.done[i] = max(a.done[i], done)
		if total > 0 {
			a.total[i] = total
		}
		a.message = fmt.Sprintf("files[%d] %s", i, message)
	})
}

// settle records that file i's stage returned: what it reached is all it
// will.
func (a *progressSum) settle(i int) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total[i] = a.done[i]
	a.settled++
}

// state sums the files: the total is known once every file's is.
func (a *progressSum) state() (done, total int64, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.done {
		done += a.done[i]
		if total >= 0 && a.total[i] >= 0 {
			total += a.total[i]
		} else {
			total = -1
		}
	}
	msg = fmt.Sprintf("%d of %d files finished", a.settled, a.n)
	if a.message != "" && a.settled < a.n {
		msg += "; " + a.message
	}
	return done, max(total, 0), msg
}

// stop ends the reports; the last one, if any bytes moved since the one
// before, says how many files were staged. None follows stop.
func (a *progressSum) stop(staged int) {
	if a == nil {
		return
	}
	close(a.quit)
	<-a.exited
	if done, total, _ := a.state(); done > a.last {
		a.report(done, total, fmt.Sprintf("done: %d of %d files staged", staged, a.n))
	}
}
