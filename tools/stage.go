package tools

import (
	"context"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"go.opentelemetry.io/otel/attribute"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/source"
	"github.com/filestage/filestage/spool"
)

// StageName is the tool's name.
const StageName = "stage_connector_file"

// StageTool describes stage_connector_file.
func StageTool() mcp.Tool {
	return newTool(StageName, "Stage a file for a connector action",
		"Stage a file into connector storage so it can be attached to a connector action that takes a file_uploadable argument. "+
			"filestage reads the URL server-side (http(s), a file:// path below the server's allowed roots, or inline data:), detects the MIME type from the bytes, hashes and uploads them, and returns the descriptor {name, mimetype, s3key} to embed in the action's file_uploadable argument. "+
			"Send a progressToken to get progress notifications for large files.",
		schema.For[schema.StageRequest](), schema.For[schema.StageResponse]())
}

// Stage fetches, hashes and uploads a file, and returns its descriptor.
func (s *Service) Stage(ctx context.Context, in schema.StageRequest) (schema.StageResponse, error) {
	start := time.Now()
	p := auth.FromContext(ctx)
	rawURL := strings.TrimSpace(in.URL)
	if rawURL == "" {
		return schema.StageResponse{}, invalid("url", "is required", "Pass the file's http(s) URL, its file:// URL, or its bytes as a data: URL.")
	}
	u, err := source.ParseURL(rawURL)
	if err != nil {
		return schema.StageResponse{}, s.sourceError(err)
	}
	toolSlug, err := checkToolSlug("toolSlug", in.ToolSlug)
	if err != nil {
		return schema.StageResponse{}, err
	}
	toolkit := toolkitOf(toolSlug)
	if in.ToolkitSlug != "" {
		if toolkit, err = checkToolkitSlug("toolkitSlug", in.ToolkitSlug); err != nil {
			return schema.StageResponse{}, err
		}
	}
	name, err := checkFilename("filename", in.Filename, false)
	if err != nil {
		return schema.StageResponse{}, err
	}

	leave, err := s.Callers.enter(ctx, p, true)
	if err != nil {
		return schema.StageResponse{}, err
	}
	defer leave()
	release, err := s.Stages.acquire(ctx, serverStagesFull)
	if err != nil {
		return schema.StageResponse{}, err
	}
	defer release()

	if st, ok := s.Provider.(providers.URLStager); ok {
		if u.Scheme != "http" && u.Scheme != "https" {
			return schema.StageResponse{}, &Error{Status: 501, Slug: "UNSUPPORTED_BY_PROVIDER",
				Message: "url: this provider fetches URLs itself, so it stages public http(s) URLs only, not " + u.Scheme + ": sources",
				Fix:     "Pass a public http(s) URL, or run filestage with --provider local, s3, composio, alloy or quant."}
		}
		// The platform fetches the URL from its own network: the same
		// guard as filestage's fetches, before it is handed over.
		if err := s.Sources.CheckPublic(ctx, u); err != nil {
			return schema.StageResponse{}, s.sourceError(err)
		}
		// The caller's filename is the descriptor's name here too.
		d, err := st.StageURL(ctx, providers.StageURLRequest{URL: rawURL, ToolkitSlug: toolkit, ToolSlug: toolSlug, Filename: name})
		if err != nil {
			return schema.StageResponse{}, storageError("staging the URL", err)
		}
		return schema.StageResponse{Success: true, Name: d.Name, Mimetype: d.Mimetype, S3Key: d.S3Key}, nil
	}

	_, fetch := startSpan(ctx, "fetch", attribute.String("filestage.source.kind", sourceKind(u)))
	src, err := s.Sources.Open(ctx, rawURL)
	if err != nil {
		err = s.sourceError(err)
		endSpan(fetch, err)
		return schema.StageResponse{}, err
	}
	defer src.Body.Close()
	fetch.End()
	m := startMeter(ctx, src.Size, 2)
	ok := false
	defer func() {
		m.stop(ok)
		s.metrics().Fetched(sourceKind(u), m.read.Load())
	}()

	// One pass reads the source while hashing it. A local file or inline
	// data is read again for the upload; anything else, and anything a
	// store on this disk would copy anyway, is spooled on the way.
	var body providers.Body
	var sum spool.Sum
	_, read := startSpan(ctx, "read and hash")
	if _, mover := s.Provider.(providers.Mover); src.At != nil && !mover {
		sum, err = spool.Hash(m.reading(ctx, src.Body), s.MaxBytes)
		body.Data = src.At
	} else {
		var sp *spool.File
		r, unreserve, rerr := s.spoolReader(ctx, m.reading(ctx, src.Body), src.Size)
		if rerr != nil {
			rerr = s.sourceError(rerr)
			endSpan(read, rerr)
			return schema.StageResponse{}, rerr
		}
		// After the spool is gone (or kept as an object): defers run in
		// reverse.
		defer unreserve()
		sp, err = spool.Write(r, s.SpoolDir, s.MaxBytes)
		if err == nil {
			defer sp.Close()
			sum, body.Data, body.Temp = sp.Sum, sp, sp
		}
	}
	if err != nil {
		err = s.sourceError(err)
		endSpan(read, err)
		return schema.StageResponse{}, err
	}
	read.SetAttributes(attribute.Int64("filestage.bytes", sum.Size))
	read.End()
	m.sized(sum.Size)
	body.Data, body.Size, body.MD5 = m.uploading(ctx, body.Data), sum.Size, sum.MD5

	if name == "" {
		name = src.Name
	}
	mimeType := source.DetectType(sum.Head, src.ContentType, name)
	name = source.FileName(name, mimeType, sum.MD5)

	sctx, store := startSpan(ctx, "store", attribute.Int64("filestage.bytes", sum.Size))
	slot, err := providers.Store(sctx, s.Provider, providers.UploadRequest{
		ToolkitSlug: toolkit, ToolSlug: toolSlug, Filename: name, Mimetype: mimeType, MD5: sum.MD5, Size: sum.Size,
		Namespace: p.Namespace, Owner: p.ID,
	}, body)
	if err != nil {
		err = storageError("storing", err)
		endSpan(store, err)
		return schema.StageResponse{}, err
	}
	store.SetAttributes(attribute.String("filestage.slot.type", string(slot.Type)))
	store.End()
	ok = true
	if slot.Type != providers.SlotExisting {
		s.metrics().Stored(sum.Size)
	}
	s.Logger.InfoContext(ctx, "staged", "client", p.Name, "tool", toolSlug, "source", sourceName(u), "key", slot.Key,
		"bytes", sum.Size, "type", slot.Type, "mimetype", mimeType, "elapsed", time.Since(start).Round(time.Millisecond))
	size := sum.Size
	return schema.StageResponse{
		Success:  true,
		Name:     name,
		Mimetype: mimeType,
		S3Key:    slot.Key,
		Size:     &size,
		MD5:      hex.EncodeToString(sum.MD5[:]),
		Type:     string(slot.Type),
		FileID:   slot.FileID,
		ReadBack: readBack(slot),
	}, nil
}

// readBack is how the slot's object is read back, as far as its storage
// says.
func readBack(slot providers.Slot) schema.ReadBack {
	return schema.ReadBack{DownloadURL: slot.DownloadURL, DownloadURLExpiresAt: timePtr(slot.DownloadExpiresAt), ExpiresAt: timePtr(slot.ObjectExpiresAt)}
}

// timePtr is t in UTC, or nil when t is zero: an absent time in JSON.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// sourceName says where bytes came from in the log: the host of an
// http(s) URL, never a path or inline data.
func sourceName(u *url.URL) string {
	if u.Host != "" && u.Scheme != "file" {
		return u.Host
	}
	return u.Scheme
}

// sourceError says what went wrong with the source and what to do about it.
func (s *Service) sourceError(err error) error {
	e := &Error{Status: 502, Slug: "SOURCE_UNREACHABLE", Message: "url: " + err.Error(), Err: err,
		Fix: "Check that the URL is reachable without authentication and try again."}
	switch {
	case errors.Is(err, context.Canceled):
		return cancelled(err)
	case errors.Is(err, spool.ErrBusy):
		return busy("the temporary files of the stage calls running fill the spool budget (--spool-budget)")
	case errors.Is(err, source.ErrScheme):
		e.Status, e.Slug, e.Fix = 400, "INVALID_ARGUMENT", "Pass an http(s) URL, a file:///absolute/path URL, or data:<mediatype>;base64,<data>."
	case errors.Is(err, source.ErrRefused):
		e.Status, e.Slug, e.Fix = 403, "SOURCE_REFUSED", "Use a publicly reachable URL. For local development only, start filestage with --allow-private-urls."
	case errors.Is(err, source.ErrOutsideRoots):
		e.Status, e.Slug = 403, "SOURCE_REFUSED"
		e.Fix = "Start filestage with --file-roots (FILESTAGE_FILE_ROOTS) naming the folder that holds the file, or pass an http(s) URL."
		if roots := s.Sources.Roots(); len(roots) > 0 {
			e.Fix = "Stage a file below " + strings.Join(roots, ", ") + ", or add its folder to --file-roots (FILESTAGE_FILE_ROOTS)."
		}
	case errors.Is(err, source.ErrFile):
		e.Status, e.Slug, e.Fix = 400, "SOURCE_NOT_A_FILE", "Pass the file:// URL of one readable regular file."
	case errors.Is(err, source.ErrInlineTooLarge):
		e.Status, e.Slug, e.Fix = 413, "SOURCE_TOO_LARGE", "Pass larger files by http(s) or file:// URL, or upload them with request_presigned_upload; the inline cap is FILESTAGE_MAX_INLINE_BYTES."
	case errors.Is(err, source.ErrTooLarge), errors.Is(err, spool.ErrTooLarge):
		e.Status, e.Slug, e.Fix = 413, "SOURCE_TOO_LARGE", "Stage a smaller file, or raise the cap with --max-bytes (FILESTAGE_MAX_BYTES)."
	case errors.Is(err, source.ErrStatus):
		e.Slug, e.Fix = "SOURCE_HTTP_ERROR", "Check that the URL is right and publicly readable (no login, not expired)."
	case errors.Is(err, context.DeadlineExceeded):
		e.Status, e.Slug, e.Fix = 504, "SOURCE_TIMEOUT", "The source was too slow; try again or use a faster host."
	}
	return e
}

// cancelled is the tool error of a call whose client cancelled it.
func cancelled(err error) *Error {
	return &Error{Status: 499, Slug: "CANCELLED", Message: "the call was cancelled; nothing was stored", Fix: "Call the tool again if the file is still needed.", Err: err}
}

// storageError reports a provider failure; nothing was stored for the caller.
// What the platform said (status, slug, fix, request id) is passed on.
func storageError(doing string, err error) error {
	e := &Error{Status: 502, Slug: "STORAGE_ERROR", Message: "storage failed while " + doing + ": " + err.Error(), Err: err,
		Fix: "Nothing was stored. Try again; if it keeps failing, check the provider's settings."}
	var pe *providers.Error
	switch {
	case errors.Is(err, context.Canceled):
		return cancelled(err)
	case errors.Is(err, providers.ErrUnsupported):
		e.Status, e.Slug, e.Message, e.Fix = 501, "UNSUPPORTED_BY_PROVIDER", err.Error(), "Use the other tool, or run filestage with a provider that supports this."
	case errors.As(err, &pe):
		if pe.Status != 0 {
			e.Status = pe.Status
		}
		if pe.Slug != "" {
			e.Slug = pe.Slug
		}
		if pe.Fix != "" {
			e.Fix = pe.Fix + " (Nothing was stored.)"
		}
		e.RequestID, e.Errors = pe.RequestID, pe.Errors
	}
	return e
}
