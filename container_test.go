package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/internal/testhttp"
	"github.com/filestage/filestage/schema"
)

// containerImage is the image .ci/container.sh built with podman from the
// release's linux/amd64 binary (FILESTAGE_TEST_IMAGE), and podman's path.
func containerImage(t *testing.T) (podman, image string) {
	t.Helper()
	image = releaseArtefact(t, "FILESTAGE_TEST_IMAGE", "the image source .ci/container.sh builds with podman from a GoReleaser snapshot")
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Fatalf("an image to test, and no podman: %v", err)
	}
	return podman, image
}

// podmanOut runs podman and returns its stdout, failing the test on an
// error.
func podmanOut(t *testing.T, podman string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(podman, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// stamped is a release build's version line: a semantic version and the
// commit it was built from.
var stamped = regexp.MustCompile(`^filestage v\d+\.\d+\.\d+\S* \([0-9a-f]{12}, `)

// podmanLogs is what a container wrote to stdout and stderr.
func podmanLogs(podman, name string) string {
	out, _ := exec.Command(podman, "logs", name).CombinedOutput()
	return string(out)
}

// TestContainerImage: the image is what the Containerfile promises, serves
// MCP over stdio as the registry's OCI package runs it (docker run -i with
// a volume at /data), stages over HTTP with a token, answers its own
// health check, and stops cleanly on SIGTERM.
func TestContainerImage(t *testing.T) {
	podman, image := containerImage(t)
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())

	t.Run("config", func(t *testing.T) {
		var inspected []struct {
			Config struct {
				User         string
				Env          []string
				Entrypoint   []string
				Cmd          []string
				ExposedPorts map[string]any
				Labels       map[string]string
				Volumes      map[string]any
			}
		}
		if err := json.Unmarshal([]byte(podmanOut(t, podman, "image", "inspect", image)), &inspected); err != nil || len(inspected) != 1 {
			t.Fatalf("inspect: %v", err)
		}
		c := inspected[0].Config
		var server struct{ Name string }
		raw, err := os.ReadFile("server.json")
		if err != nil || json.Unmarshal(raw, &server) != nil {
			t.Fatalf("server.json: %v", err)
		}
		for _, tt := range []struct {
			what      string
			got, want any
		}{
			{"user", c.User, "65532:65532"},
			{"entrypoint", c.Entrypoint, []string{"/filestage"}},
			{"command (stdio by default)", len(c.Cmd), 0},
			{"FILESTAGE_DATA_DIR", slices.Contains(c.Env, "FILESTAGE_DATA_DIR=/data"), true},
			{"volume", c.Volumes["/data"] != nil, true},
			{"port", c.ExposedPorts["8080/tcp"] != nil, true},
			{"registry name label", c.Labels["io.modelcontextprotocol.server.name"], server.Name},
			{"licence label", c.Labels["org.opencontainers.image.licenses"], "Apache-2.0"},
			// The release stamps its version and keeps the commit.
			{"version", stamped.MatchString(podmanOut(t, podman, "run", "--rm", image, "version")), true},
		} {
			if fmt.Sprint(tt.got) != fmt.Sprint(tt.want) {
				t.Errorf("%s: %v, want %v", tt.what, tt.got, tt.want)
			}
		}
	})

	body := testfile.PNG(64 << 10)
	dataURL := "data:image/png;base64," + base64.StdEncoding.EncodeToString(body)
	stage := map[string]any{"url": dataURL, "toolSlug": "GMAIL_SEND_EMAIL", "filename": "chart.png"}

	t.Run("stdio", func(t *testing.T) {
		volume := "filestage-test-" + suffix
		t.Cleanup(func() { exec.Command(podman, "volume", "rm", "-f", volume).Run() })
		var logs bytes.Buffer
		c, err := client.NewStdioMCPClientWithOptions(podman, nil,
			[]string{"run", "-i", "--rm", "--mount", "type=volume,src=" + volume + ",dst=/data", image},
			mcptransport.WithCommandStderrWriter(&logs))
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if t.Failed() {
				t.Logf("container's log:\n%s", logs.String())
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		init := mcp.InitializeRequest{}
		init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
		if _, err := c.Initialize(ctx, init); err != nil {
			t.Fatalf("initialize: %v", err)
		}
		defer c.Close()
		list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tool := range list.Tools {
			names = append(names, tool.Name)
		}
		if !slices.Contains(names, "stage_connector_file") || !slices.Contains(names, "request_presigned_upload") {
			t.Errorf("tools/list: %v", names)
		}
		// The volume starts empty, owned as the image's /data is: the
		// user the image runs as can write the store there.
		out := decode[schema.StageResponse](t, call(t, c, "stage_connector_file", stage))
		if out.MD5 != md5hex(body) || out.Mimetype != "image/png" || out.Name != "chart.png" {
			t.Errorf("stage: %+v", out)
		}
	})

	t.Run("http", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		name := "filestage-test-" + suffix
		const token = "container-test-token"
		podmanOut(t, podman, "run", "-d", "--name", name, "-p", addr+":8080", "-e", "FILESTAGE_AUTH_TOKEN="+token,
			image, "serve", "--transport", "http", "--listen", ":8080", "--public-url", "http://"+addr)
		t.Cleanup(func() { exec.Command(podman, "rm", "-f", "-v", name).Run() }) // with its /data volume
		defer func() {
			if t.Failed() {
				t.Logf("container's log:\n%s", podmanLogs(podman, name))
			}
		}()
		var up bool
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if _, _, code := command(t, nil, "health", "http://"+addr); code == 0 {
				up = true
				break
			}
		}
		if !up {
			t.Fatal("the container's /healthz did not answer within 30 s")
		}
		if out := podmanOut(t, podman, "exec", name, "/filestage", "health"); !strings.Contains(out, "http://127.0.0.1:8080/healthz: ok") {
			t.Errorf("filestage health inside the container: %q", out)
		}

		c, err := client.NewStreamableHttpClient("http://"+addr+"/mcp",
			mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
		if err != nil {
			t.Fatal(err)
		}
		c = connect(t, c)
		out := decode[schema.StageResponse](t, call(t, c, "stage_connector_file", stage))
		if out.MD5 != md5hex(body) || out.DownloadURL == "" {
			t.Fatalf("stage: %+v", out)
		}
		// Read back from the host, through the published port.
		resp, got := testhttp.Do(t, http.MethodGet, out.DownloadURL, nil, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
			t.Errorf("download: %s, %d bytes, want the %d staged", resp.Status, len(got), len(body))
		}
		c.Close()

		// SIGTERM, as a runtime stops a container: a clean exit.
		podmanOut(t, podman, "stop", "--time", "40", name)
		if code := strings.TrimSpace(podmanOut(t, podman, "inspect", "--format", "{{.State.ExitCode}}", name)); code != "0" {
			t.Errorf("exit code %s after SIGTERM", code)
		}
		if logs := podmanLogs(podman, name); !strings.Contains(logs, "shutting down") {
			t.Errorf("no shutdown in the log:\n%s", logs)
		}
	})
}
