package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/internal/testhttp"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/tools"
)

// fetch GETs a URL and returns its status, headers and body.
func fetch(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, b := getWith(t, url, "")
	return resp.StatusCode, resp.Header, b
}

// getWith GETs url with a bearer token (none when empty) and reads the
// whole answer.
func getWith(t *testing.T, url, token string) (*http.Response, []byte) {
	t.Helper()
	header := map[string]string{}
	if token != "" {
		header["Authorization"] = "Bearer " + token
	}
	return testhttp.Do(t, http.MethodGet, url, header, nil)
}

func listResources(t *testing.T, c *client.Client) []mcp.Resource {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var all []mcp.Resource
	req := mcp.ListResourcesRequest{}
	for {
		res, err := c.ListResources(ctx, req)
		if err != nil {
			t.Fatalf("resources/list: %v", err)
		}
		all = append(all, res.Resources...)
		if res.NextCursor == "" {
			return all
		}
		req.Params.Cursor = res.NextCursor
	}
}

func readResource(c *client.Client, uri string) (*mcp.ReadResourceResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.ReadResourceRequest{}
	req.Params.URI = uri
	return c.ReadResource(ctx, req)
}

// TestReadBack: over every transport and protocol version, a staged file
// comes back through its download_url (also a resource_link), through
// resources/list and resources/read (bytes up to the inline cap, a link
// beyond), until its retention ends.
func TestReadBack(t *testing.T) {
	small := []byte("a small note, read back as bytes")
	large := testfile.PNG(96 << 10)
	src := sourceServer(t, map[string][]byte{"/chart.png": large}, "image/png")
	for _, tr := range transports {
		for _, version := range tr.versions {
			t.Run(tr.name+"/"+version, func(t *testing.T) {
				s := start(t, map[string]string{"FILESTAGE_MAX_INLINE_BYTES": "65536"}, tr.args...)
				c := tr.connect(t, s, version)

				res := call(t, c, tools.StageName, map[string]any{"url": "data:text/plain;base64," + base64.StdEncoding.EncodeToString(small),
					"toolSlug": "GMAIL_SEND_EMAIL", "filename": `Notes "März".txt`})
				note := decode[schema.StageResponse](t, res)
				if note.DownloadURL == "" || note.ExpiresAt == nil || note.DownloadURLExpiresAt == nil {
					t.Fatalf("no read-back in %+v", note)
				}
				if d := time.Until(*note.ExpiresAt); d < 7*24*time.Hour-time.Minute || d > 7*24*time.Hour+time.Minute {
					t.Errorf("expires_at %v is not a week from now", note.ExpiresAt)
				}
				var link *mcp.ResourceLink
				for _, content := range res.Content {
					if l, ok := content.(mcp.ResourceLink); ok {
						link = &l
					}
				}
				if link == nil || link.URI != note.DownloadURL || link.Name != note.Name || link.MIMEType != note.Mimetype {
					t.Errorf("resource_link %+v for %+v", link, note)
				}
				status, h, body := fetch(t, note.DownloadURL)
				_, params, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
				if status != 200 || !bytes.Equal(body, small) || params["filename"] != note.Name || !strings.Contains(note.Name, "März") || h.Get("Content-Type") != note.Mimetype {
					t.Errorf("GET download_url: %d %q %v", status, body, h)
				}

				chart := decode[schema.StageResponse](t, call(t, c, tools.StageName, map[string]any{"url": src.URL + "/chart.png", "toolSlug": "SLACK_UPLOAD_FILE"}))

				byURI := map[string]mcp.Resource{}
				for _, r := range listResources(t, c) {
					byURI[r.URI] = r
				}
				for _, f := range []schema.StageResponse{note, chart} {
					r, ok := byURI[tools.ResourcePrefix+f.S3Key]
					if !ok || r.Name != f.Name || r.MIMEType != f.Mimetype || r.Size == nil || *r.Size != *f.Size {
						t.Errorf("resources/list: %+v for %s (%v)", r, f.S3Key, ok)
					}
				}

				got, err := readResource(c, tools.ResourcePrefix+note.S3Key)
				if err != nil || len(got.Contents) != 1 {
					t.Fatalf("resources/read: %v %v", got, err)
				}
				if blob, ok := got.Contents[0].(mcp.BlobResourceContents); !ok || blob.Blob != base64.StdEncoding.EncodeToString(small) || blob.MIMEType != note.Mimetype {
					t.Errorf("small file read as %+v", got.Contents[0])
				}
				got, err = readResource(c, tools.ResourcePrefix+chart.S3Key)
				if err != nil || len(got.Contents) != 1 {
					t.Fatalf("resources/read: %v %v", got, err)
				}
				txt, ok := got.Contents[0].(mcp.TextResourceContents)
				if !ok || txt.MIMEType != "text/uri-list" {
					t.Fatalf("large file read as %+v", got.Contents[0])
				}
				if status, _, body := fetch(t, strings.TrimSpace(txt.Text)); status != 200 || !bytes.Equal(body, large) {
					t.Errorf("the large file's link gave %d, %d bytes", status, len(body))
				}
				for _, uri := range []string{tools.ResourcePrefix + "gmail/GMAIL_SEND_EMAIL/" + strings.Repeat("0", 32) + ".txt", tools.ResourcePrefix + "../secret", tools.ResourcePrefix} {
					if _, err := readResource(c, uri); err == nil {
						t.Errorf("read %s", uri)
					}
				}
				checkTmpEmpty(t, s.dataDir)
			})
		}
	}
}

// TestResourcesAreTheCallers: with several clients, each lists and reads
// only its own files, in every HTTP mode.
func TestResourcesAreTheCallers(t *testing.T) {
	for _, m := range isolationModes {
		t.Run(m.name, func(t *testing.T) {
			p := namedTokens()
			s := start(t, p.env(t), m.args...)
			aliceToken, bobToken := p.tokens(t, s.addr)
			alice, bob := dial(t, s.addr, aliceToken, m), dial(t, s.addr, bobToken, m)
			mine := decode[schema.StageResponse](t, call(t, alice, tools.StageName, map[string]any{
				"url": "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte("alice's")), "toolSlug": "GMAIL_SEND_EMAIL"}))
			uri := tools.ResourcePrefix + mine.S3Key
			if l := listResources(t, alice); len(l) != 1 || l[0].URI != uri {
				t.Errorf("alice lists %+v", l)
			}
			if l := listResources(t, bob); len(l) != 0 {
				t.Errorf("bob lists %+v", l)
			}
			if _, err := readResource(alice, uri); err != nil {
				t.Errorf("alice cannot read her file: %v", err)
			}
			_, err := readResource(bob, uri)
			if err == nil || !strings.Contains(err.Error(), "no such staged file") {
				t.Errorf("bob read alice's file: %v", err)
			}
			// Bob staging the same bytes gets his own object.
			his := decode[schema.StageResponse](t, call(t, bob, tools.StageName, map[string]any{
				"url": "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte("alice's")), "toolSlug": "GMAIL_SEND_EMAIL"}))
			if his.S3Key == mine.S3Key || his.Type != "new" {
				t.Errorf("bob's stage of the same bytes: %+v", his)
			}
		})
	}
}

// TestStoreCommands: ls, rm and gc work on the data directory of a
// running server, and it on theirs.
func TestStoreCommands(t *testing.T) {
	s := start(t, map[string]string{"FILESTAGE_RETENTION": "2s"}, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	c := dial(t, s.addr, "", isolationModes[0])
	env := map[string]string{"FILESTAGE_DATA_DIR": s.dataDir, "FILESTAGE_PUBLIC_URL": "http://" + s.addr}
	var staged []schema.StageResponse
	for i, tool := range []string{"GMAIL_SEND_EMAIL", "SLACK_UPLOAD_FILE", "SLACK_UPLOAD_FILE"} {
		body := bytes.Repeat([]byte{byte('a' + i)}, 100+i)
		staged = append(staged, decode[schema.StageResponse](t, call(t, c, tools.StageName, map[string]any{
			"url": "data:text/plain;base64," + base64.StdEncoding.EncodeToString(body), "toolSlug": tool, "filename": "f" + string(rune('0'+i)) + ".txt"})))
	}

	stdout, stderr, code := command(t, env, "ls", "--json")
	if code != 0 {
		t.Fatalf("ls: %d %s", code, stderr)
	}
	var listed []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var f map[string]any
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("ls --json line %q: %v", line, err)
		}
		listed = append(listed, f)
	}
	if len(listed) != 3 || listed[0]["name"] != "f0.txt" || listed[0]["key"] != staged[0].S3Key || listed[0]["size"] != float64(100) ||
		listed[0]["owner"] != auth.Local().ID || listed[0]["expires_at"] == nil {
		t.Errorf("ls --json: %v", listed)
	}
	stdout, _, code = command(t, env, "ls", "--prefix", "slack/")
	if code != 0 || strings.Contains(stdout, staged[0].S3Key) || !strings.Contains(stdout, staged[1].S3Key) || !strings.Contains(stdout, `"f2.txt"`) {
		t.Errorf("ls --prefix slack/: %d\n%s", code, stdout)
	}

	if stdout, stderr, code := command(t, env, "rm", staged[1].S3Key); code != 0 || !strings.Contains(stdout, "removed "+staged[1].S3Key) {
		t.Errorf("rm: %d %q %q", code, stdout, stderr)
	}
	if status, _, _ := fetch(t, staged[1].DownloadURL); status != http.StatusNotFound {
		t.Errorf("the server served a removed file: %d", status)
	}
	if _, stderr, code := command(t, env, "rm", staged[1].S3Key, "../../etc/passwd"); code != 1 || strings.Count(stderr, "filestage: ") != 2 {
		t.Errorf("rm of what is not there: %d %q", code, stderr)
	}
	// The server stores again what rm removed.
	again := decode[schema.StageResponse](t, call(t, c, tools.StageName, map[string]any{
		"url": "data:text/plain;base64," + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'b'}, 101)), "toolSlug": "SLACK_UPLOAD_FILE"}))
	if again.Type != "new" {
		t.Errorf("staged after rm: %s", again.Type)
	}

	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"FILESTAGE_DATA_DIR": s.dataDir + "-typo"}, "no local store in"},
		{map[string]string{"FILESTAGE_DATA_DIR": s.dataDir, "FILESTAGE_PROVIDER": "s3"}, "works on the local store"},
	} {
		if _, stderr, code := command(t, tt.env, "ls"); code != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("ls with %v: %d %q", tt.env, code, stderr)
		}
	}
	if _, err := os.Stat(s.dataDir + "-typo"); err == nil {
		t.Error("ls made a store in a mistyped data directory")
	}

	time.Sleep(3 * time.Second) // past the 2 s retention
	if stdout, stderr, code := command(t, env, "gc"); code != 0 || !strings.Contains(stdout, "removed 3 expired files") {
		t.Errorf("gc: %d %q %q", code, stdout, stderr)
	}
	if stdout, _, _ := command(t, env, "ls", "--json"); strings.TrimSpace(stdout) != "" {
		t.Errorf("after gc: %s", stdout)
	}
	if status, _, _ := fetch(t, staged[0].DownloadURL); status != http.StatusNotFound {
		t.Errorf("the server served an expired file: %d", status)
	}
}
