package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/schema"
)

// manySource serves /a.png, /b.txt and /slow.png (after a pause, so that
// it finishes after files listed after it); anything else is 404. It
// counts the requests in flight at once.
type manySource struct {
	*httptest.Server
	inFlight, most atomic.Int64
}

func newManySource(t *testing.T, pause time.Duration) *manySource {
	t.Helper()
	s := &manySource{}
	png := testfile.PNG(3000)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for m := s.most.Load(); n > m && !s.most.CompareAndSwap(m, n); m = s.most.Load() {
		}
		switch r.URL.Path {
		case "/slow.png":
			select {
			case <-time.After(pause):
			case <-r.Context().Done():
				return
			}
			fallthrough
		case "/a.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(png)
		case "/b.txt":
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("hello, world\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// callMany calls stage_connector_files and reads its answer: the
// structured content, which the text must repeat, or the error envelope.
func callMany(t *testing.T, f *fixture, args any) (schema.StageManyResponse, *schema.ErrorBody) {
	t.Helper()
	res := f.call(t, StageManyName, args)
	if res.IsError {
		e := errorOf(t, res)
		return schema.StageManyResponse{}, &e
	}
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	var out schema.StageManyResponse
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("structured content %s: %v", raw, err)
	}
	if text := res.Content[0].(mcp.TextContent).Text; !jsonEqual(text, string(raw)) {
		t.Errorf("text %s differs from structured content %s", text, raw)
	}
	return out, nil
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	p, _ := json.Marshal(x)
	q, _ := json.Marshal(y)
	return bytes.Equal(p, q)
}

func fileList(urls ...string) []any {
	out := make([]any, len(urls))
	for i, u := range urls {
		out[i] = map[string]any{"url": u}
	}
	return out
}

// TestStageManyMixedSources: good files are staged and described in the
// order given, however long each takes; each bad one is left out of files
// and named by its index in errors, without its URL; when none is staged
// the answer is a tool error listing every index.
func TestStageManyMixedSources(t *testing.T) {
	src := newManySource(t, 300*time.Millisecond)
	const hello = "data:text/plain;name=hello.txt;base64,aGVsbG8="
	type failure struct{ slug, prefix string }
	tests := []struct {
		name  string
		files []any
		// staged names, in order, when the call succeeds
		names  []string
		failed map[int]failure
		// a tool error: its slug, and the indexes it must name
		toolError string
	}{
		{name: "all staged, in order though the first is slowest",
			files: []any{map[string]any{"url": src.URL + "/slow.png", "filename": "first.png"}, map[string]any{"url": hello}, map[string]any{"url": src.URL + "/b.txt"}, map[string]any{"url": src.URL + "/a.png", "filename": "last.png"}},
			names: []string{"first.png", "hello.txt", "b.txt", "last.png"}},
		{name: "mixed good and bad",
			files: []any{
				map[string]any{"url": hello},
				map[string]any{"url": src.URL + "/missing.png?token=secret"},
				map[string]any{"url": "ftp://example.com/x.png"},
				map[string]any{"url": src.URL + "/slow.png"},
				map[string]any{"url": "data:,x", "filename": "../.."},
				map[string]any{"url": src.URL + "/a.png", "filename": "chart.png"},
			},
			names: []string{"hello.txt", "slow.png", "chart.png"},
			failed: map[int]failure{
				1: {"SOURCE_HTTP_ERROR", "files[1].url: "},
				2: {"INVALID_ARGUMENT", "files[2].url: "},
				4: {"INVALID_ARGUMENT", "files[4].filename: "},
			}},
		{name: "one file, failing", files: fileList(src.URL + "/missing"), toolError: "SOURCE_HTTP_ERROR"},
		{name: "all failing alike", files: fileList(src.URL+"/missing", src.URL+"/gone"), toolError: "SOURCE_HTTP_ERROR"},
		{name: "all failing differently", files: fileList(src.URL+"/missing", "ftp://example.com/x", "data:;base64,!!"), toolError: "NOTHING_STAGED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, &fakeProvider{}, 1<<20)
			out, e := callMany(t, f, map[string]any{"files": tt.files, "toolSlug": "GMAIL_SEND_EMAIL"})
			defer f.spoolEmpty(t)
			if tt.toolError != "" {
				if e == nil {
					t.Fatalf("want the tool error %s, got %+v", tt.toolError, out)
				}
				if e.Slug != tt.toolError || len(e.Errors) != len(tt.files) {
					t.Errorf("got %s with errors %q, want %s with %d", e.Slug, e.Errors, tt.toolError, len(tt.files))
				}
				for i := range tt.files {
					at := fmt.Sprintf("files[%d]", i)
					if !strings.Contains(e.Message, at) || i < len(e.Errors) && !strings.HasPrefix(e.Errors[i], at) {
						t.Errorf("%s not named: %q %q", at, e.Message, e.Errors)
					}
				}
				if strings.Contains(e.Message+strings.Join(e.Errors, ""), src.URL) {
					t.Errorf("the error repeats the URL: %+v", e)
				}
				if n := f.provider.calls(); n != 0 {
					t.Errorf("storage asked %d times", n)
				}
				return
			}
			if e != nil {
				t.Fatalf("tool error %+v", e)
			}
			var names []string
			for _, d := range out.Files {
				names = append(names, d.Name)
				if d.S3Key == "" || d.Mimetype == "" {
					t.Errorf("incomplete descriptor %+v", d)
				}
			}
			if !slices.Equal(names, tt.names) {
				t.Errorf("files %v, want %v", names, tt.names)
			}
			if out.Success != (len(tt.failed) == 0) || len(out.Results) != len(tt.files) || len(out.Errors) != len(tt.failed) {
				t.Errorf("success %v, %d results, %d errors, want %d failed of %d", out.Success, len(out.Results), len(out.Errors), len(tt.failed), len(tt.files))
			}
			staged := 0
			for i, r := range out.Results {
				if r.Index != i {
					t.Errorf("results[%d] has index %d", i, r.Index)
				}
				if _, bad := tt.failed[i]; bad {
					if r != (schema.StageManyResult{Index: i, Status: "failed"}) {
						t.Errorf("results[%d] = %+v, want failed alone", i, r)
					}
					continue
				}
				if r.Status != "staged" || staged >= len(out.Files) || r.S3Key != out.Files[staged].S3Key || r.Size == nil || len(r.MD5) != 32 || r.Type != "new" {
					t.Errorf("results[%d] = %+v", i, r)
				}
				staged++
			}
			for _, fe := range out.Errors {
				want, ok := tt.failed[fe.Index]
				if !ok || fe.Slug != want.slug || !strings.HasPrefix(fe.Message, want.prefix) || fe.SuggestedFix == "" {
					t.Errorf("error %+v, want %+v", fe, want)
				}
				if strings.Contains(fe.Message, src.URL) || strings.Contains(fe.Message, "secret") || strings.Contains(fe.Message, "ftp://") {
					t.Errorf("error %d repeats the URL: %q", fe.Index, fe.Message)
				}
			}
			if n := len(f.provider.uploaded); n != len(tt.names) {
				t.Errorf("%d uploads for %d files staged", n, len(tt.names))
			}
		})
	}
}

// TestStageManyLimits: a call stages its files a few at a time, never more
// than the caller's or the server's stage slots, so that its own files
// never crowd each other out into BUSY; each file counts as a call against
// the caller's calls per minute.
func TestStageManyLimits(t *testing.T) {
	limited := &auth.Principal{ID: "limited", Name: "limited", Limits: auth.Limits{Stages: 1}}
	tests := []struct {
		name      string
		set       func(*Service)
		principal *auth.Principal
		files     int
		most      int64 // most source requests at once
		staged    int
	}{
		{"caller default of 1 stage, 5 files", func(s *Service) { s.Callers = NewCallers(auth.Limits{Stages: 1}) }, nil, 5, 1, 5},
		{"caller's own limit of 1 stage, 5 files", func(s *Service) { s.Callers = NewCallers(auth.Limits{Stages: 8}) }, limited, 5, 1, 5},
		{"server limit of 2 stages, 6 files", func(s *Service) { s.Stages = NewSlots(2) }, nil, 6, 2, 6},
		{"no limits, 20 files, 4 at a time", func(*Service) {}, nil, 20, stageManyParallel, 20},
		{"3 calls a minute, 5 files", func(s *Service) { s.Callers = NewCallers(auth.Limits{CallsPerMinute: 3}) }, nil, 5, stageManyParallel, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each file takes a while, so that files overlap when they can.
			src := newManySource(t, 150*time.Millisecond)
			svc, _ := newService(t, &fakeProvider{})
			tt.set(svc)
			ctx := context.Background()
			if tt.principal != nil {
				ctx = auth.NewContext(ctx, tt.principal)
			}
			urls := make([]schema.StageManyFile, tt.files)
			for i := range urls {
				urls[i] = schema.StageManyFile{URL: src.URL + "/slow.png", Filename: "f" + strconv.Itoa(i) + ".png"}
			}
			out, err := svc.StageMany(ctx, schema.StageManyRequest{Files: urls, ToolSlug: "GMAIL_SEND_EMAIL"})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Files) != tt.staged {
				t.Errorf("%d staged, want %d: %+v", len(out.Files), tt.staged, out.Errors)
			}
			for _, fe := range out.Errors {
				if fe.Slug != "RATE_LIMITED" {
					t.Errorf("error %+v", fe)
				}
			}
			if most := src.most.Load(); most > tt.most || tt.staged > 1 && most < min(tt.most, 2) {
				t.Errorf("%d files fetched at once, want at most %d (and more than one where allowed)", most, tt.most)
			}
		})
	}
}

// TestStageManyProgressSums: the call's progress is the sum over its
// files, its total once every file's size is known, and its last report
// says all is done.
func TestStageManyProgressSums(t *testing.T) {
	const size = 64 << 10
	body := testfile.Random(size)
	var halfway sync.WaitGroup
	halfway.Add(3)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(body[:size/2])
		w.(http.Flusher).Flush()
		halfway.Done()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write(body[size/2:])
	}))
	defer srv.Close()
	svc, _ := newService(t, &fakeProvider{})
	rec := &recorder{}
	in := schema.StageManyRequest{ToolSlug: "GMAIL_SEND_EMAIL", Files: []schema.StageManyFile{
		{URL: srv.URL + "/1.bin"}, {URL: srv.URL + "/missing"}, {URL: srv.URL + "/2.bin"}, {URL: srv.URL + "/3.bin"},
	}}
	done := make(chan error, 1)
	go func() {
		out, err := svc.StageMany(WithProgress(context.Background(), rec.progress), in)
		if err == nil && len(out.Files) != 3 {
			err = fmt.Errorf("%d files staged, want 3: %+v", len(out.Files), out.Errors)
		}
		done <- err
	}()
	halfway.Wait()
	// Every file is halfway through reading: only a sum can say so.
	const whole = 3 * 2 * size
	deadline := time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(rec.all(), func(r report) bool { return r.done == 3*size/2 }) {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("no report of the three halves summed: %+v", rec.all())
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	reports := rec.all()
	last := int64(0)
	for _, r := range reports {
		if r.done <= last || r.total != 0 && r.total != whole || r.message == "" {
			t.Errorf("report %+v after %d", r, last)
		}
		last = r.done
	}
	if i := slices.IndexFunc(reports, func(r report) bool { return r.done == 3*size/2 }); reports[i].total != whole || !strings.Contains(reports[i].message, "of 4 files") {
		t.Errorf("halfway report %+v, want the total %d of the three files known", reports[i], whole)
	}
	if final := reports[len(reports)-1]; final.done != whole || final.total != whole || final.message != "done: 3 of 4 files staged" {
		t.Errorf("the last report is %+v", final)
	}
}

// TestStageManyCancel: cancelling the call stops every file, those
// running and those not started, and nothing is described.
func TestStageManyCancel(t *testing.T) {
	var started atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		w.Header().Set("Content-Length", "100000")
		w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	svc, spoolDir := newService(t, &fakeProvider{})
	fs := make([]schema.StageManyFile, 10)
	for i := range fs {
		fs[i].URL = srv.URL + "/" + strconv.Itoa(i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := svc.StageMany(ctx, schema.StageManyRequest{Files: fs, ToolSlug: "GMAIL_SEND_EMAIL"})
		done <- err
	}()
	for started.Load() < stageManyParallel {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		te := AsError(err)
		if te.Slug != "CANCELLED" || len(te.Errors) != len(fs) {
			t.Errorf("got %s with %d errors, want CANCELLED for all %d files", te.Slug, len(te.Errors), len(fs))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the files went on after the call was cancelled")
	}
	if n := started.Load(); n != stageManyParallel {
		t.Errorf("%d sources fetched, want only the %d running when cancelled", n, stageManyParallel)
	}
	if entries, _ := os.ReadDir(spoolDir); len(entries) != 0 {
		t.Errorf("%d temporary files left", len(entries))
	}
}

// TestStageManyScope: the tool needs stage_connector_file's scope, unless
// it is given one of its own.
func TestStageManyScope(t *testing.T) {
	token, line, err := auth.NewToken("presigner", []string{auth.ScopePresign})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte(line+"\n"), 0o600)
	a, err := auth.New(auth.Options{TokensFile: path})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	in := schema.StageManyRequest{Files: []schema.StageManyFile{{URL: "data:,x"}}, ToolSlug: "GMAIL_SEND_EMAIL"}
	for _, tt := range []struct {
		scopes map[string]string
		slug   string
	}{
		{map[string]string{StageName: auth.ScopeStage, PresignName: auth.ScopePresign}, "INSUFFICIENT_SCOPE"},
		{map[string]string{StageName: auth.ScopeStage, StageManyName: auth.ScopePresign}, ""},
		{nil, ""},
	} {
		svc, _ := newService(t, &fakeProvider{})
		svc.Scopes = tt.scopes
		_, err := svc.StageMany(auth.NewContext(context.Background(), p), in)
		slug := ""
		if err != nil {
			slug = AsError(err).Slug
		}
		if slug != tt.slug {
			t.Errorf("scopes %v: %v, want %q", tt.scopes, err, tt.slug)
		}
	}
}

// TestStageManyBadInput: every kind of JSON in the wrong place is refused
// as a whole, naming the field and the file's index, before anything is
// fetched.
func TestStageManyBadInput(t *testing.T) {
	good := map[string]any{"url": "data:,x"}
	with := func(item any) map[string]any {
		return map[string]any{"files": []any{good, good, good, item}, "toolSlug": "GMAIL_SEND_EMAIL"}
	}
	tooMany := make([]any, MaxStageManyFiles+1)
	for i := range tooMany {
		tooMany[i] = good
	}
	type tc struct {
		name  string
		args  any
		field string // the message starts with it
	}
	tests := []tc{
		{"arguments an array", []any{good}, "arguments"},
		{"no arguments", map[string]any{}, "files"},
		{"files missing", map[string]any{"toolSlug": "GMAIL_SEND_EMAIL"}, "files"},
		{"files empty", map[string]any{"files": []any{}, "toolSlug": "GMAIL_SEND_EMAIL"}, "files"},
		{"21 files", map[string]any{"files": tooMany, "toolSlug": "GMAIL_SEND_EMAIL"}, "files"},
		{"unknown argument", map[string]any{"files": []any{good}, "toolSlug": "GMAIL_SEND_EMAIL", "url": "data:,x"}, "url"},
		{"toolSlug missing", map[string]any{"files": []any{good}}, "toolSlug"},
		{"toolSlug lower case", map[string]any{"files": []any{good}, "toolSlug": "gmail_send_email"}, "toolSlug"},
		{"toolSlug a number", map[string]any{"files": []any{good}, "toolSlug": 5}, "toolSlug"},
		{"toolkitSlug bad", map[string]any{"files": []any{good}, "toolSlug": "GMAIL_SEND_EMAIL", "toolkitSlug": "g mail!"}, "toolkitSlug"},
		{"item without url", with(map[string]any{"filename": "a.png"}), "files[3].url"},
		{"item with empty url", with(map[string]any{"url": " "}), "files[3].url"},
		{"item with null url", with(map[string]any{"url": nil}), "files[3].url"},
		{"item with unknown field", with(map[string]any{"url": "data:,x", "toolSlug": "GMAIL_SEND_EMAIL"}), "files[3].toolSlug"},
		{"item with odd unknown field", with(map[string]any{"url": "data:,x", "a b\n": 1}), `files[3]."a b\n"`},
		{"empty item", with(map[string]any{}), "files[3].url"},
	}
	// Every JSON type where files, an item, url and filename go.
	kinds := map[string]any{"null": nil, "boolean": true, "number": 1.5, "string": "x", "object": map[string]any{"url": "data:,x"}, "array": []any{good}}
	for kind, v := range kinds {
		if kind != "array" {
			tests = append(tests, tc{"files a JSON " + kind, map[string]any{"files": v, "toolSlug": "GMAIL_SEND_EMAIL"}, "files"})
		}
		if kind != "object" {
			tests = append(tests, tc{"item a JSON " + kind, with(v), "files[3]"})
		}
		if kind != "string" {
			if kind != "null" {
				tests = append(tests, tc{"filename a JSON " + kind, with(map[string]any{"url": "data:,x", "filename": v}), "files[3].filename"})
			}
			tests = append(tests, tc{"url a JSON " + kind, with(map[string]any{"url": v}), "files[3].url"})
		}
	}
	tests = append(tests, tc{"files a string holding an array", map[string]any{"files": `[{"url": "data:,x"}]`, "toolSlug": "GMAIL_SEND_EMAIL"}, "files"})
	f := newFixture(t, &fakeProvider{}, 1<<20)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, e := callMany(t, f, tt.args)
			if e == nil {
				t.Fatal("accepted")
			}
			if e.Slug != "INVALID_ARGUMENT" || e.Status != 400 || !strings.HasPrefix(e.Message, tt.field+":") {
				t.Errorf("%s %d %q, want INVALID_ARGUMENT naming %s", e.Slug, e.Status, e.Message, tt.field)
			}
		})
	}
	if n := f.provider.calls(); n != 0 {
		t.Errorf("bad input reached the provider %d times", n)
	}
	f.spoolEmpty(t)
	// null is as good as no filename, as for stage_connector_file.
	if _, e := callMany(t, f, with(map[string]any{"url": "data:,x", "filename": nil})); e != nil {
		t.Errorf("filename null: %+v", e)
	}
}

// TestStageManySchema checks what stage_connector_files' schemas promise
// a model (TestToolSnapshots holds the whole definition): the input's
// files are {url, filename?} objects, 1 to 20, and the output's files are
// file_uploadable descriptors exactly.
//
// TestToolSchemasMirrorTheDocs has no case for this tool, on purpose: it
// mirrors Recoup's and Composio's documented bodies field for field, and
// no platform documents a batch staging call. The tool's own shape is
// checked here instead.
func TestStageManySchema(t *testing.T) {
	tool := StageManyTool()
	type object struct {
		Type                 string                     `json:"type"`
		Required             []string                   `json:"required"`
		Properties           map[string]json.RawMessage `json:"properties"`
		AdditionalProperties *bool                      `json:"additionalProperties"`
		Items                json.RawMessage            `json:"items"`
		MinItems, MaxItems   *int
	}
	read := func(raw json.RawMessage) object {
		var o object
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	keys := func(o object) []string {
		var k []string
		for name := range o.Properties {
			k = append(k, name)
		}
		slices.Sort(k)
		return k
	}
	closed := func(o object) bool { return o.AdditionalProperties != nil && !*o.AdditionalProperties }
	in := read(tool.RawInputSchema)
	if !slices.Equal(keys(in), []string{"files", "toolSlug", "toolkitSlug"}) || !slices.Equal(in.Required, []string{"files", "toolSlug"}) || !closed(in) {
		t.Errorf("input: properties %v, required %v", keys(in), in.Required)
	}
	inFiles := read(in.Properties["files"])
	if inFiles.Type != "array" || inFiles.MinItems == nil || *inFiles.MinItems != 1 || inFiles.MaxItems == nil || *inFiles.MaxItems != MaxStageManyFiles {
		t.Errorf("input files: %+v", inFiles)
	}
	if item := read(inFiles.Items); !slices.Equal(keys(item), []string{"filename", "url"}) || !slices.Equal(item.Required, []string{"url"}) || !closed(item) {
		t.Errorf("input file: properties %v, required %v", keys(item), item.Required)
	}
	out := read(tool.RawOutputSchema)
	if !slices.Equal(keys(out), []string{"errors", "files", "results", "success"}) || !slices.Equal(out.Required, []string{"success", "files", "results"}) {
		t.Errorf("output: properties %v, required %v", keys(out), out.Required)
	}
	// The descriptor file_uploadable takes, as request_presigned_upload
	// answers it.
	want := read(read(PresignTool().RawOutputSchema).Properties["file_uploadable"])
	if d := read(read(out.Properties["files"]).Items); !slices.Equal(keys(d), keys(want)) || !slices.Equal(d.Required, want.Required) || !closed(d) {
		t.Errorf("output files' items: properties %v, required %v, want %v, %v", keys(d), d.Required, keys(want), want.Required)
	}
	if e := read(read(out.Properties["errors"]).Items); !slices.Equal(e.Required, []string{"index", "slug", "message", "suggested_fix"}) {
		t.Errorf("output errors' items: required %v", e.Required)
	}
}

// FuzzDecodeFiles: whatever JSON arrives as files, decodeFiles either
// reads 1 to 20 files, or refuses with INVALID_ARGUMENT naming files or
// one file by index; it never panics.
func FuzzDecodeFiles(f *testing.F) {
	for _, seed := range []string{
		`[{"url":"data:,x"}]`, `[{"url":"https://example.com/a.pdf","filename":"a.pdf"},{"url":"data:,y"}]`,
		`[]`, `null`, `{}`, `"[]"`, `7`, `true`, `[null]`, `[{"url":5}]`, `[{"url":"x","filename":null}]`,
		`[{"url":"x","extra":1}]`, `[{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"},{"url":"x"}]`,
		`[{"url":"\u0000","filename":"\ud800"}]`, `[{"\u00e9\n":1}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // the arguments were decoded as JSON before files is read
		}
		files, err := decodeFiles(json.RawMessage(raw))
		if err != nil {
			te := AsError(err)
			if te.Slug != "INVALID_ARGUMENT" || !strings.HasPrefix(te.Message, "files") || te.Fix == "" {
				t.Fatalf("%s: %+v", raw, te)
			}
			return
		}
		if len(files) == 0 || len(files) > MaxStageManyFiles {
			t.Fatalf("%s: %d files accepted", raw, len(files))
		}
	})
}
