// Package tools defines filestage's MCP tools: it validates their input,
// orchestrates source, spool and provider, and shapes every failure into a
// tool error the model can act on.
package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/internal/redact"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/source"
	"github.com/filestage/filestage/spool"
	"github.com/filestage/filestage/upload"
)

// Service holds what the tools work with.
type Service struct {
	Provider providers.Provider
	Sources  *source.Opener
	// SpoolDir holds fetched bytes while they are hashed and uploaded.
	SpoolDir string
	MaxBytes int64
	// Stages bounds concurrent stage calls; nil means unbounded.
	Stages Slots
	// Spool bounds the disk the spool files use at once; nil means
	// unbounded.
	Spool *spool.Budget
	// Callers bounds each principal's calls; nil means no per-principal
	// limits.
	Callers *Callers
	// Uploads serve request_user_upload; nil turns the user upload tools
	// off.
	Uploads *upload.Manager
	// ServedHere, when set, is the base URL of the upload URLs a
	// filestage process serves itself (the local store's): the presign
	// command checks that something answers there.
	ServedHere string
	// URLsEndWithProcess says this process alone serves those URLs (over
	// stdio, on a port of its own): presign answers say so.
	URLsEndWithProcess bool
	// InlineResourceBytes is the largest staged file resources/read
	// returns as bytes; 0 means DefaultInlineResourceBytes.
	InlineResourceBytes int64
	// Scopes name the scope each tool needs, by tool name: a principal
	// without it neither sees nor calls the tool. Nil: no scopes.
	Scopes map[string]string
	// Metrics, when set, count calls, their outcomes and their bytes.
	Metrics Metrics
	Logger  *slog.Logger
}

const instructions = `filestage puts files where connector platforms can attach them.
To attach a file to a connector action (GMAIL_SEND_EMAIL, SLACK_UPLOAD_FILE, ...), call stage_connector_file with the file's URL (http(s), file:// below the server's allowed roots, or a small data: URL) and the action's toolSlug, then put {name, mimetype, s3key} from the result into the action's file_uploadable argument.
For several files for one action (an array of file_uploadable), call stage_connector_files with files [{url, filename?}, ...] (up to 20) and pass its files array as-is; errors names by index each file that was not staged.
When the client holds the bytes itself, call request_presigned_upload with their MD5, PUT the bytes to the returned URL with exactly the returned headers, then use file_uploadable from the result.`

// NewServer returns an MCP server offering the tools; opts are added after
// filestage's own.
func NewServer(version string, svc *Service, opts ...server.ServerOption) *server.MCPServer {
	opts = append([]server.ServerOption{
		server.WithToolCapabilities(false),
		server.WithRecovery(),
		server.WithInstructions(instructions),
		// mcp-go applies the filter to tools/list and to tools/call alike.
		server.WithToolFilter(func(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
			p := auth.FromContext(ctx)
			allowed := make([]mcp.Tool, 0, len(tools))
			for _, t := range tools {
				if scope, ok := svc.Scopes[t.Name]; !ok || p.Allows(scope) {
					allowed = append(allowed, t)
				}
			}
			return allowed
		}),
	}, opts...)
	s := server.NewMCPServer("filestage", version, opts...)
	s.AddTool(StageTool(), handle(svc, StageName, svc.Stage))
	s.AddTool(PresignTool(), handle(svc, PresignName, svc.Presign))
	s.AddTool(StageManyTool(), handle(svc, StageManyName, svc.stageFiles))
	if idx, ok := svc.Provider.(providers.Index); ok {
		server.WithResourceCapabilities(false, false)(s)
		svc.addResources(s, idx)
	}
	if svc.Uploads != nil {
		s.AddTool(UserUploadTool(), handle(svc, UserUploadName, svc.RequestUserUpload))
		s.AddTool(GetUserUploadTool(), handle(svc, GetUserUploadName, svc.GetUserUpload))
	}
	return s
}

// handle adapts a typed tool function. Every failure, bad arguments
// included, becomes a tool error result, never a protocol error: the model
// must see it to correct itself. Failures are logged too, for the operator,
// and every call's outcome goes to svc's Metrics.
func handle[In, Out any](svc *Service, tool string, fn func(context.Context, In) (Out, error)) server.ToolHandlerFunc {
	log := svc.Logger
	fail := func(ctx context.Context, err error, outcome *string) *mcp.CallToolResult {
		te := AsError(err)
		*outcome = te.Slug
		level := slog.LevelInfo
		if te.Status >= 500 {
			level = slog.LevelWarn
		}
		log.Log(ctx, level, "tool failed", "client", auth.FromContext(ctx).Name, "tool", tool, "slug", te.Slug, "status", te.Status, "message", te.Message)
		return ErrorResult(te)
	}
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		m := svc.metrics()
		m.CallStarted(tool)
		outcome := "INTERNAL_ERROR" // a panic's: every return sets it
		defer func() { m.CallEnded(tool, outcome) }()
		// A call ends with its principal's credentials: SSE runs calls
		// apart from the request that made them.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(auth.FromContext(ctx).Revoked(), cancel)()
		var in In
		if err := decodeArgs(req, &in); err != nil {
			return fail(ctx, err, &outcome), nil
		}
		if meta := req.Params.Meta; meta != nil && meta.ProgressToken != nil && server.ServerFromContext(ctx) != nil {
			ctx = WithProgress(ctx, notifier(ctx, meta.ProgressToken))
		}
		out, err := fn(ctx, in)
		if err != nil {
			return fail(ctx, err, &outcome), nil
		}
		text, err := json.Marshal(out)
		if err != nil {
			return fail(ctx, err, &outcome), nil
		}
		res := mcp.NewToolResultStructured(out, string(text))
		res.Content = append(res.Content, resourceLinks(out)...)
		outcome = OutcomeOK
		return res, nil
	}
}

// resourceLinks are resource_link blocks for the files an answer says can
// be read back, so that clients can offer them without parsing the JSON.
func resourceLinks(out any) []mcp.Content {
	var links []mcp.Content
	add := func(url, name, mimetype, description string) {
		if url != "" {
			links = append(links, mcp.NewResourceLink(url, name, description, mimetype))
		}
	}
	switch o := out.(type) {
	case schema.StageResponse:
		add(o.DownloadURL, o.Name, o.Mimetype, "The staged file, read back from storage.")
	case schema.PresignResponse:
		add(o.DownloadURL, o.FileUploadable.Name, o.FileUploadable.Mimetype, "The file, read back from storage once uploaded.")
	case schema.UserUploadResponse:
		add(o.DownloadURL, o.Name, o.Mimetype, "The person's file, read back from storage.")
	case schema.StageManyResponse:
		for _, r := range o.Results {
			add(r.DownloadURL, r.Name, r.Mimetype, fmt.Sprintf("files[%d], read back from storage.", r.Index))
		}
	}
	return links
}

// notifier sends progress as notifications/progress for the call that
// asked for it with token.
func notifier(ctx context.Context, token mcp.ProgressToken) Progress {
	srv := server.ServerFromContext(ctx)
	return func(done, total int64, message string) {
		params := map[string]any{"progressToken": token, "progress": done, "message": message}
		if total > 0 {
			params["total"] = total
		}
		// A notification that cannot be queued is dropped: the next
		// one says more anyway.
		if srv.SendNotificationToClient(ctx, "notifications/progress", params) != nil || total == 0 || done < total {
			return
		}
		// The last report goes just before the answer. mcp-go's
		// streamable HTTP transport drops a notification its forwarder
		// has taken but not yet written when the answer overtakes it
		// (mcp-go pull request 969): give the forwarder a moment.
		if s := server.ClientSessionFromContext(ctx); s != nil {
			for i := 0; i < 20 && len(s.NotificationChannel()) > 0; i++ {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// Error is a tool failure shaped like Composio's error envelope.
type Error struct {
	Status    int
	Slug      string
	Message   string
	Fix       string
	RequestID string
	Errors    []string
	Err       error
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

// invalid reports a bad argument, naming the field and the fix.
func invalid(field, problem, fix string) *Error {
	return &Error{Status: 400, Slug: "INVALID_ARGUMENT", Message: field + ": " + problem, Fix: fix}
}

// AsError is err as a tool failure; an error of no known kind is internal.
func AsError(err error) *Error {
	var te *Error
	if !errors.As(err, &te) {
		te = &Error{Status: 500, Slug: "INTERNAL_ERROR", Message: err.Error(), Fix: "Try again; if it keeps failing, report it with filestage's log.", Err: err}
	}
	return te
}

// ErrorResult renders err as the JSON envelope in text content. It is not
// put in structuredContent: clients validate that against the output schema
// even on error results.
func ErrorResult(err error) *mcp.CallToolResult {
	te := AsError(err)
	// Addresses go from what the caller reads, wherever an error picked
	// them up (a connection's two ends, a resolver's); the log keeps them.
	text, _ := json.Marshal(schema.ErrorEnvelope{Error: schema.ErrorBody{
		Message:      redact.Addrs(te.Message),
		Code:         te.Status,
		Slug:         te.Slug,
		Status:       te.Status,
		SuggestedFix: redact.Addrs(te.Fix),
		RequestID:    te.RequestID,
		Errors:       te.Errors,
	}})
	return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(string(text))}, IsError: true}
}

// decodeArgs decodes the call's arguments strictly: an unknown or mistyped
// argument is reported with the field's name.
func decodeArgs(req mcp.CallToolRequest, dst any) error {
	raw := req.Params.RawArguments
	if len(raw) == 0 {
		var err error
		if raw, err = json.Marshal(req.Params.Arguments); err != nil {
			return invalid("arguments", "cannot be read as JSON", "Pass the arguments as a JSON object.")
		}
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		return nil
	}
	fields := "Arguments are: " + strings.Join(fieldNames(dst), ", ") + "."
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return invalid(typeErr.Field, fmt.Sprintf("must be %s, got a JSON %s", kindName(typeErr.Type), typeErr.Value), "Pass "+typeErr.Field+" as "+kindName(typeErr.Type)+".")
	case errors.As(err, &typeErr):
		return invalid("arguments", "must be a JSON object, got a JSON "+typeErr.Value, "Pass the arguments as an object. "+fields)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return invalid(name, "is not an argument of this tool", "Remove it or check its spelling. "+fields)
	}
	return invalid("arguments", "are not valid JSON: "+err.Error(), "Pass the arguments as a JSON object. "+fields)
}

func fieldNames(v any) []string {
	t := reflect.TypeOf(v).Elem()
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if n, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); n != "" && n != "-" {
			names = append(names, n)
		}
	}
	return names
}

func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	}
	return "a " + t.Kind().String()
}

// newTool describes a tool by its JSON schemas. Both tools change storage
// but not destructively, and the same arguments give the same result.
func newTool(name, title, description string, in, out json.RawMessage) mcp.Tool {
	t := mcp.NewToolWithRawSchema(name, description, in)
	t.RawOutputSchema = out
	for _, opt := range []mcp.ToolOption{
		mcp.WithTitleAnnotation(title),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(true),
	} {
		opt(&t)
	}
	return t
}
