package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/schema"
)

// TestStageManyFiles drives stage_connector_files through mcp-go's client
// over every transport and protocol version, --stateless included: mixed
// good and bad sources give the good ones' descriptors in order, stored,
// the bad ones named by index, and progress summed over the files.
func TestStageManyFiles(t *testing.T) {
	ways := slices.Clone(transports)
	ways = append(ways, struct {
		name     string
		args     []string
		versions []string
		connect  func(t *testing.T, s *instance, version string) *client.Client
	}{"stateless", []string{"serve", "--transport", "http", "--listen", "127.0.0.1:0", "--stateless"}, []string{mcp.LATEST_LEGACY_PROTOCOL_VERSION, mcp.LATEST_PROTOCOL_VERSION}, transports[1].connect})
	for _, tr := range ways {
		for _, version := range tr.versions {
			t.Run(tr.name+"/"+version, func(t *testing.T) {
				s := start(t, nil, tr.args...)
				stageManyFlow(t, s, tr.connect(t, s, version))
			})
		}
	}
}

func stageManyFlow(t *testing.T, s *instance, c *client.Client) {
	if names := listTools(t, c); !slices.Contains(names, "stage_connector_files") {
		t.Fatalf("tools %v lack stage_connector_files", names)
	}
	png := testfile.PNG(120 << 10)
	notes := []byte("quarterly notes\n")
	src := sourceServer(t, map[string][]byte{"/images/logo": png}, "application/octet-stream")

	heard := progressOf(c)
	req := mcp.CallToolRequest{}
	req.Params.Name = "stage_connector_files"
	req.Params.Arguments = map[string]any{"toolSlug": "GMAIL_SEND_EMAIL", "files": []any{
		map[string]any{"url": src.URL + "/images/logo"},
		map[string]any{"url": src.URL + "/missing.png"},
		map[string]any{"url": "ftp://example.com/q3.png"},
		map[string]any{"url": "data:text/plain;base64,cXVhcnRlcmx5IG5vdGVzCg==", "filename": "notes.txt"},
	}}
	req.Params.Meta = &mcp.Meta{ProgressToken: "many-1"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	out := decode[schema.StageManyResponse](t, res)

	if out.Success || len(out.Files) != 2 || len(out.Results) != 4 || len(out.Errors) != 2 {
		t.Fatalf("got %+v", out)
	}
	for i, want := range []struct {
		name, mimetype string
		body           []byte
	}{{"logo.png", "image/png", png}, {"notes.txt", "text/plain", notes}} {
		d := out.Files[i]
		if d.Name != want.name || d.Mimetype != want.mimetype {
			t.Errorf("files[%d] = %+v, want %s (%s)", i, d, want.name, want.mimetype)
		}
		if got, err := os.ReadFile(filepath.Join(s.dataDir, "objects", filepath.FromSlash(d.S3Key))); err != nil || !bytes.Equal(got, want.body) {
			t.Errorf("files[%d]: the store holds no such bytes under %s (%v)", i, d.S3Key, err)
		}
	}
	if r := out.Results; r[0].Status != "staged" || r[0].MD5 != md5hex(png) || r[1].Status != "failed" || r[2].Status != "failed" || r[3].S3Key != out.Files[1].S3Key {
		t.Errorf("results %+v", r)
	}
	for i, want := range []struct {
		index  int
		slug   string
		prefix string
	}{{1, "SOURCE_HTTP_ERROR", "files[1].url: "}, {2, "INVALID_ARGUMENT", "files[2].url: "}} {
		e := out.Errors[i]
		if e.Index != want.index || e.Slug != want.slug || !strings.HasPrefix(e.Message, want.prefix) || e.SuggestedFix == "" || strings.Contains(e.Message, src.URL) {
			t.Errorf("errors[%d] = %+v, want index %d %s", i, e, want.index, want.slug)
		}
	}

	// The last report may follow the answer over stdio.
	total := float64(2 * (len(png) + len(notes)))
	waitFor(t, "the last progress notification", func() bool {
		progress := heard()
		return len(progress) > 0 && progress[len(progress)-1]["progress"] == total
	})
	progress := heard()
	last := 0.0
	for i, n := range progress {
		p, _ := n["progress"].(float64)
		if n["progressToken"] != "many-1" || p <= last || n["message"] == "" {
			t.Errorf("notification %d: %v after %v", i, n, last)
		}
		last = p
	}
	if final := progress[len(progress)-1]; final["total"] != total || final["message"] != "done: 2 of 4 files staged" {
		t.Errorf("the last notification is %v, want %v of %v", final, total, total)
	}

	e := toolError(t, call(t, c, "stage_connector_files", map[string]any{"toolSlug": "GMAIL_SEND_EMAIL", "files": []any{
		map[string]any{"url": src.URL + "/missing.png"}, map[string]any{"url": "ftp://example.com/q3.png"},
	}}))
	if e.Slug != "NOTHING_STAGED" || len(e.Errors) != 2 || !strings.HasPrefix(e.Errors[0], "files[0].url: ") || !strings.HasPrefix(e.Errors[1], "files[1].url: ") {
		t.Errorf("nothing staged: %+v", e)
	}
	e = toolError(t, call(t, c, "stage_connector_files", map[string]any{"toolSlug": "GMAIL_SEND_EMAIL", "files": []any{
		map[string]any{"url": "data:,x"}, map[string]any{"filename": "a.txt"},
	}}))
	if e.Slug != "INVALID_ARGUMENT" || !strings.HasPrefix(e.Message, "files[1].url: ") {
		t.Errorf("a file without url: %+v", e)
	}
	checkTmpEmpty(t, s.dataDir)
}

// TestStageManyClientLimits: a client allowed one stage at a time stages
// five files in one call, none refused BUSY; a client without the stage
// scope cannot use the tool to stage.
func TestStageManyClientLimits(t *testing.T) {
	alice, la, _ := auth.NewToken("alice", nil)
	bob, lb, _ := auth.NewToken("bob", []string{auth.ScopePresign})
	s := start(t, map[string]string{"FILESTAGE_TOKENS_FILE": tokensFile(t, la+" max-stages=1", lb)}, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	png := testfile.PNG(40 << 10)
	src := sourceServer(t, map[string][]byte{"/a.png": png, "/b.png": testfile.PNG(41 << 10)}, "image/png")
	files := []any{
		map[string]any{"url": src.URL + "/a.png"},
		map[string]any{"url": "data:,one", "filename": "one.txt"},
		map[string]any{"url": src.URL + "/b.png"},
		map[string]any{"url": "data:,two", "filename": "two.txt"},
		map[string]any{"url": "data:,three", "filename": "three.txt"},
	}
	a := dial(t, s.addr, alice, legacy)
	out := decode[schema.StageManyResponse](t, call(t, a, "stage_connector_files", map[string]any{"toolSlug": "SLACK_UPLOAD_FILE", "files": files}))
	if !out.Success || len(out.Files) != len(files) {
		t.Errorf("at max-stages=1: %+v", out)
	}

	b := dial(t, s.addr, bob, legacy)
	req := mcp.CallToolRequest{}
	req.Params.Name = "stage_connector_files"
	req.Params.Arguments = map[string]any{"toolSlug": "SLACK_UPLOAD_FILE", "files": files[1:2]}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Refused by the tool, or by the transport once the tool's scope is
	// in its map (a 403 then, as for stage_connector_file).
	res, err := b.CallTool(ctx, req)
	switch {
	case err != nil:
		if !strings.Contains(err.Error(), auth.ScopeStage) {
			t.Errorf("bob: %v", err)
		}
	default:
		if e := toolError(t, res); e.Slug != "INSUFFICIENT_SCOPE" || !strings.Contains(e.Message, auth.ScopeStage) {
			t.Errorf("bob: %+v", e)
		}
	}
}

// TestTypeScriptStageMany: the official TypeScript MCP SDK (which checks
// structuredContent against the tool's output schema) calls
// stage_connector_files with a good and a bad source over stdio,
// streamable HTTP and SSE, and reads a staged file back through its link
// and as a resource (interop/ts/stagemany.mjs).
func TestTypeScriptStageMany(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs node")
	}
	node := needNode(t)
	bin := binary(t)
	body := testfile.PNG(60 << 10)
	src := sourceServer(t, map[string][]byte{"/images/logo": body}, "application/octet-stream")
	runTSClients(t, node, bin, "stagemany.mjs", "ok stagemany ", src.URL+"/images/logo", src.URL+"/missing.png", md5hex(body))
}
