package tools

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/source"
	"github.com/filestage/filestage/spool"
)

// PresignName is the tool's name.
const PresignName = "request_presigned_upload"

// PresignTool describes request_presigned_upload.
func PresignTool() mcp.Tool {
	return newTool(PresignName, "Request a presigned upload URL",
		"Request a presigned upload URL for a file whose MD5 you know. "+
			"PUT the bytes to new_presigned_url with exactly the returned method and headers (skip the upload when type is existing), "+
			"then embed file_uploadable {name, mimetype, s3key} in the connector action's file_uploadable argument.",
		schema.For[schema.PresignRequest](), schema.For[schema.PresignResponse]())
}

// Presign asks the provider for an upload slot.
func (s *Service) Presign(ctx context.Context, in schema.PresignRequest) (schema.PresignResponse, error) {
	var (
		req providers.UploadRequest
		err error
	)
	if req.ToolkitSlug, err = checkToolkitSlug("toolkit_slug", in.ToolkitSlug); err != nil {
		return schema.PresignResponse{}, err
	}
	if req.ToolSlug, err = checkToolSlug("tool_slug", in.ToolSlug); err != nil {
		return schema.PresignResponse{}, err
	}
	if req.Filename, err = checkFilename("filename", in.Filename, true); err != nil {
		return schema.PresignResponse{}, err
	}
	if req.Mimetype, err = checkMimetype("mimetype", in.Mimetype); err != nil {
		return schema.PresignResponse{}, err
	}
	if req.MD5, err = parseMD5("md5", in.MD5); err != nil {
		return schema.PresignResponse{}, err
	}
	req.Size = -1
	if in.Size != nil {
		switch size := *in.Size; {
		case size < 0:
			return schema.PresignResponse{}, invalid("size", fmt.Sprintf("must not be negative, got %d", size), "Pass the file's size in bytes, or leave size out.")
		case size > s.MaxBytes:
			return schema.PresignResponse{}, &Error{Status: 413, Slug: "FILE_TOO_LARGE",
				Message: fmt.Sprintf("size: %d bytes is over the cap of %d", size, s.MaxBytes),
				Fix:     "Upload a smaller file, or raise the cap with --max-bytes (FILESTAGE_MAX_BYTES)."}
		default:
			req.Size = size
		}
	}
	p := auth.FromContext(ctx)
	leave, err := s.Callers.enter(ctx, p, false)
	if err != nil {
		return schema.PresignResponse{}, err
	}
	defer leave()
	req.Namespace, req.Owner = p.Namespace, p.ID
	slot, err := s.Provider.RequestUpload(ctx, req)
	if err != nil {
		return schema.PresignResponse{}, storageError("requesting an upload slot", err)
	}
	var note string
	if s.URLsEndWithProcess && slot.URL != "" && s.ServedHere != "" && strings.HasPrefix(slot.URL, s.ServedHere) {
		note = "This URL is served by the filestage process answering this call (over stdio, on a port of its own): upload before it exits, or the upload fails; expires_at assumes it keeps running."
	}
	// Debug: a line per light call would cost more than the call; the
	// tool-call metrics count them.
	s.Logger.DebugContext(ctx, "presigned", "client", p.Name, "tool", req.ToolSlug, "key", slot.Key, "type", slot.Type)
	return schema.PresignResponse{
		ID:                   slot.ID,
		Key:                  slot.Key,
		NewPresignedURL:      slot.URL,
		Type:                 string(slot.Type),
		Metadata:             schema.Metadata{StorageBackend: slot.StorageBackend},
		Method:               slot.Method,
		Headers:              slot.Headers,
		ExpiresAt:            timePtr(slot.ExpiresAt),
		DownloadURL:          slot.DownloadURL,
		DownloadURLExpiresAt: timePtr(slot.DownloadExpiresAt),
		FileExpiresAt:        timePtr(slot.ObjectExpiresAt),
		Note:                 note,
		FileUploadable:       schema.Descriptor{Name: req.Filename, Mimetype: req.Mimetype, S3Key: slot.Key},
		FileID:               slot.FileID,
	}, nil
}

// PresignFile fills in a presign request from a local file, which it reads
// once to hash, then asks for an upload slot as Presign does: the path of
// `filestage presign`. Given fields are kept; the MD5 is always computed.
func (s *Service) PresignFile(ctx context.Context, fileURL string, in schema.PresignRequest) (schema.PresignResponse, error) {
	src, err := s.Sources.Open(ctx, fileURL)
	if err != nil {
		return schema.PresignResponse{}, s.sourceError(err)
	}
	defer src.Body.Close()
	m := startMeter(ctx, src.Size, 1)
	sum, err := spool.Hash(m.reading(ctx, src.Body), s.MaxBytes)
	m.sized(sum.Size)
	m.stop(err == nil)
	if err != nil {
		return schema.PresignResponse{}, s.sourceError(err)
	}
	if in.Filename == "" {
		in.Filename = src.Name
	}
	if in.Mimetype == "" {
		in.Mimetype = source.DetectType(sum.Head, src.ContentType, in.Filename)
	}
	in.MD5, in.Size = hex.EncodeToString(sum.MD5[:]), &sum.Size
	return s.Presign(ctx, in)
}
