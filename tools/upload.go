package tools

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/source"
	"github.com/filestage/filestage/upload"
)

// Tool names of the user upload tools.
const (
	UserUploadName    = "request_user_upload"
	GetUserUploadName = "get_user_upload"
)

// UserUploadTool describes request_user_upload.
func UserUploadTool() mcp.Tool {
	// Each call makes a new link: not idempotent.
	t := newTool(UserUploadName, "Ask the person for a file of their own",
		"Ask the person to send a file of their own (one on their computer or phone) through a page filestage serves, without its bytes passing through the conversation. "+
			"When the client supports URL elicitation, it opens the page for the person and this call answers once the file is staged, with the descriptor {name, mimetype, s3key} for the action's file_uploadable argument. "+
			"Otherwise it answers at once with upload_url: show it to the person, then call get_user_upload with upload_id.",
		schema.For[schema.UserUploadRequest](), schema.For[schema.UserUploadResponse]())
	mcp.WithIdempotentHintAnnotation(false)(&t)
	return t
}

// GetUserUploadTool describes get_user_upload.
func GetUserUploadTool() mcp.Tool {
	t := newTool(GetUserUploadName, "Check on a file the person is sending",
		"Where a request_user_upload stands: waiting_for_user, receiving (with bytes so far), staged (with the descriptor {name, mimetype, s3key}), expired or failed. "+
			"Pass wait_seconds to wait for the file.",
		schema.For[schema.UserUploadStatusRequest](), schema.For[schema.UserUploadResponse]())
	mcp.WithReadOnlyHintAnnotation(true)(&t)
	mcp.WithOpenWorldHintAnnotation(false)(&t)
	return t
}

// RequestUserUpload makes an upload link for the caller and, when the
// client can open it for the person, waits for the file.
func (s *Service) RequestUserUpload(ctx context.Context, in schema.UserUploadRequest) (schema.UserUploadResponse, error) {
	if _, ok := s.Provider.(providers.URLStager); ok {
		return schema.UserUploadResponse{}, &Error{Status: 501, Slug: "UNSUPPORTED_BY_PROVIDER",
			Message: "this provider fetches files from public URLs itself, so it cannot take a person's own file",
			Fix:     "Ask the person for a public link to the file and stage it with stage_connector_file, or run filestage with another provider."}
	}
	toolSlug, err := checkToolSlug("toolSlug", in.ToolSlug)
	if err != nil {
		return schema.UserUploadResponse{}, err
	}
	toolkit := toolkitOf(toolSlug)
	if in.ToolkitSlug != "" {
		if toolkit, err = checkToolkitSlug("toolkitSlug", in.ToolkitSlug); err != nil {
			return schema.UserUploadResponse{}, err
		}
	}
	name, err := checkFilename("filename", in.Filename, false)
	if err != nil {
		return schema.UserUploadResponse{}, err
	}
	accept, err := checkAccept("mimetype", in.Mimetype)
	if err != nil {
		return schema.UserUploadResponse{}, err
	}
	max := s.MaxBytes
	if in.MaxBytes != nil {
		if *in.MaxBytes <= 0 || *in.MaxBytes > s.MaxBytes {
			return schema.UserUploadResponse{}, invalid("max_bytes", fmt.Sprintf("must be between 1 and %d, got %d", s.MaxBytes, *in.MaxBytes), "Leave max_bytes out for the server's cap, or pass a smaller size.")
		}
		max = *in.MaxBytes
	}
	message := strings.Join(strings.Fields(in.Message), " ")
	if len(message) > 500 {
		return schema.UserUploadResponse{}, invalid("message", "is longer than 500 bytes", "Say in one short line what file you need and why.")
	}
	p := auth.FromContext(ctx)
	leave, err := s.Callers.enter(ctx, p, false)
	if err != nil {
		return schema.UserUploadResponse{}, err
	}
	defer leave()
	st, err := s.Uploads.Create(upload.Request{Owner: p.ID, Namespace: p.Namespace, ToolSlug: toolSlug, ToolkitSlug: toolkit,
		Filename: name, Accept: accept, MaxBytes: max, Message: message})
	if errors.Is(err, upload.ErrTooManyLinks) {
		return schema.UserUploadResponse{}, &Error{Status: 429, Slug: "TOO_MANY_UPLOADS", Message: fmt.Sprintf("too many upload links are open (%d per client at most)", upload.MaxLinksPerOwner),
			Fix: "Wait for the person to use or let expire the links already given, or reuse one: get_user_upload says where each stands."}
	} else if err != nil {
		return schema.UserUploadResponse{}, err
	}
	// Not the whole ID: the link is the capability.
	s.Logger.InfoContext(ctx, "user upload requested", "client", p.Name, "tool", toolSlug, "upload", st.ID[:8])
	if !clientOpensURLs(ctx) {
		return userUploadResponse(st), nil
	}
	// The client opens the page for the person; the call waits for the
	// file, reporting what arrives.
	srv := server.ServerFromContext(ctx)
	res, err := srv.RequestURLElicitation(ctx, server.ClientSessionFromContext(ctx), st.ID, st.URL, uploadPrompt(message))
	switch {
	case err != nil:
		// The client could not be asked after all: the link still works.
		return userUploadResponse(st), nil
	case res.Action != mcp.ElicitationResponseActionAccept:
		return schema.UserUploadResponse{}, &Error{Status: 409, Slug: "USER_DECLINED", Message: "the person did not open the upload page (" + string(res.Action) + ")",
			Fix: "Ask the person whether they want to send the file; call request_user_upload again if so."}
	}
	return s.waitUpload(ctx, p.ID, st.ID, time.Until(st.Expires))
}

// GetUserUpload says where an upload stands, waiting for it if asked.
func (s *Service) GetUserUpload(ctx context.Context, in schema.UserUploadStatusRequest) (schema.UserUploadResponse, error) {
	id := strings.TrimSpace(in.UploadID)
	if id == "" {
		return schema.UserUploadResponse{}, invalid("upload_id", "is required", "Pass upload_id from request_user_upload.")
	}
	leave, err := s.Callers.enter(ctx, auth.FromContext(ctx), false)
	if err != nil {
		return schema.UserUploadResponse{}, err
	}
	defer leave()
	var wait time.Duration
	if in.WaitSeconds != nil {
		if *in.WaitSeconds < 0 || *in.WaitSeconds > 600 {
			return schema.UserUploadResponse{}, invalid("wait_seconds", fmt.Sprintf("must be between 0 and 600, got %d", *in.WaitSeconds), "Pass a number of seconds up to 600, or leave it out.")
		}
		wait = time.Duration(*in.WaitSeconds) * time.Second
	}
	return s.waitUpload(ctx, auth.FromContext(ctx).ID, id, wait)
}

// waitUpload waits up to wait for upload id of owner's to end, reporting
// progress, and answers with where it stands.
func (s *Service) waitUpload(ctx context.Context, owner, id string, wait time.Duration) (schema.UserUploadResponse, error) {
	report, _ := ctx.Value(progressKey{}).(Progress)
	var last time.Time
	st, ok := s.Uploads.Wait(ctx, owner, id, time.Now().Add(wait), func(st upload.Status) {
		if report != nil && st.State == upload.Receiving && time.Since(last) >= progressInterval {
			last = time.Now()
			report(st.Received, st.Total, "received "+ofSize(st.Received, st.Total))
		}
	})
	if !ok {
		return schema.UserUploadResponse{}, &Error{Status: 404, Slug: "NOT_FOUND", Message: "upload_id: no upload " + id + " of yours",
			Fix: "Pass upload_id exactly as request_user_upload returned it; links are forgotten a while after they end."}
	}
	if err := ctx.Err(); err != nil && st.State != upload.Staged {
		return schema.UserUploadResponse{}, cancelled(err)
	}
	return userUploadResponse(st), nil
}

func userUploadResponse(st upload.Status) schema.UserUploadResponse {
	r := schema.UserUploadResponse{Status: string(st.State), UploadID: st.ID}
	switch st.State {
	case upload.Waiting:
		r.UploadURL, r.ExpiresAt = st.URL, st.Expires.UTC().Format(time.RFC3339)
		r.NextStep = "Show upload_url to the person and ask them to send the file there, then call get_user_upload with upload_id (wait_seconds up to 600 waits for it)."
	case upload.Receiving:
		r.UploadURL, r.ExpiresAt = st.URL, st.Expires.UTC().Format(time.RFC3339)
		r.ReceivedBytes, r.TotalBytes = &st.Received, &st.Total
		r.NextStep = "The file is arriving: call get_user_upload again, with wait_seconds, to get its descriptor."
	case upload.Expired:
		r.NextStep = "The link expired unused: call request_user_upload again if the file is still needed."
	case upload.Failed:
		r.Reason = st.Err.Error()
		r.NextStep = "Call request_user_upload again for a new link."
	case upload.Staged:
		d := st.Result.(schema.StageResponse)
		r.Name, r.Mimetype, r.S3Key, r.Size, r.MD5 = d.Name, d.Mimetype, d.S3Key, d.Size, d.MD5
		r.DownloadURL, r.DownloadURLExpiresAt, r.FileExpiresAt = d.DownloadURL, d.DownloadURLExpiresAt, d.ExpiresAt
		r.NextStep = "Put {name, mimetype, s3key} in the action's file_uploadable argument."
	}
	return r
}

// StageFinished stores a user's finished upload, as stage_connector_file
// stores a fetched file: its bytes were hashed as they arrived.
func (s *Service) StageFinished(ctx context.Context, f upload.Finished) (any, error) {
	// It counts as a stage call: it stores as one does.
	release, err := s.Stages.acquire(ctx, serverStagesFull)
	if err != nil {
		return nil, err
	}
	defer release()
	name := f.Filename
	if n := source.SanitizeName(f.Name); n != "" {
		name = n
	}
	sum := f.File.Sum
	// The type the link's filter judged, from the bytes alone: a name
	// chosen by the uploader does not change it.
	mimeType := f.Type
	name = source.FileName(name, mimeType, sum.MD5)
	slot, err := providers.Store(ctx, s.Provider, providers.UploadRequest{
		ToolkitSlug: f.ToolkitSlug, ToolSlug: f.ToolSlug, Filename: name, Mimetype: mimeType, MD5: sum.MD5, Size: sum.Size, Namespace: f.Namespace, Owner: f.Owner,
	}, providers.Body{Data: f.File, Size: sum.Size, MD5: sum.MD5, Temp: f.File})
	if err != nil {
		return nil, storageError("storing", err)
	}
	if slot.Type != providers.SlotExisting {
		s.metrics().Stored(sum.Size)
	}
	s.Logger.InfoContext(ctx, "user upload staged", "tool", f.ToolSlug, "key", slot.Key, "bytes", sum.Size, "type", slot.Type)
	size := sum.Size
	return schema.StageResponse{Success: true, Name: name, Mimetype: mimeType, S3Key: slot.Key, Size: &size, MD5: hex.EncodeToString(sum.MD5[:]), Type: string(slot.Type), FileID: slot.FileID, ReadBack: readBack(slot)}, nil
}

// clientOpensURLs reports whether the caller's client declared URL-mode
// elicitation: it can open a page for the person.
func clientOpensURLs(ctx context.Context) bool {
	session, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo)
	if !ok {
		return false
	}
	e := session.GetClientCapabilities().Elicitation
	return e != nil && e.URL != nil
}

func uploadPrompt(message string) string {
	if message == "" {
		return "Please choose the file to send."
	}
	return message
}

// checkAccept reads an accept filter: types or families, comma-separated.
func checkAccept(field, s string) (string, error) {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.ToLower(strings.TrimSpace(a)); a == "" {
			continue
		}
		typ, sub, ok := strings.Cut(a, "/")
		if !ok || typ == "" || sub == "" || strings.ContainsAny(a, " ;\\\"") {
			return "", invalid(field, fmt.Sprintf("%q is not a MIME type or family", a), "Pass types such as application/pdf or image/*, comma-separated, or leave it out for any file.")
		}
		out = append(out, a)
	}
	return strings.Join(out, ","), nil
}
