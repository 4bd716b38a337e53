// Package quant stores files in Quant's AI file storage: small files go in
// one request with their bytes base64-encoded in the JSON body, larger ones
// to a presigned S3 URL Quant hands out. Quant does not deduplicate, so
// every upload is new.
package quant

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/filestage/filestage/providers"
)

// Name is the provider's registry name.
const Name = "quant"

// DefaultBaseURL is Quant's API when QUANT_BASE_URL is not set.
const DefaultBaseURL = "https://dashboard.quantcdn.io"

// DirectMax is the largest file sent in one request. Quant documents
// "≤7MB"; the decimal reading is the smaller one, so a file Quant might
// count as over the limit is never sent directly. Its base64 body (about
// 9.3 MB) also stays under the 10 MB request limit of API gateways.
const DirectMax = 7 * 1000 * 1000

// DefaultURLTTL is assumed when Quant does not say how long its upload URL
// lasts (expiresIn); it is the AWS SDKs' default, the shortest one likely.
const DefaultURLTTL = 15 * time.Minute

// Provider talks to Quant's AI files API.
type Provider struct {
	http      *providers.Client
	endpoint  string // .../organizations/{org}/ai/files
	token     string
	directMax int64
	now       func() time.Time
	log       *slog.Logger
}

var _ providers.Storer = (*Provider)(nil)

// Open is the provider's registry factory.
func Open(_ context.Context, s providers.Settings) (providers.Provider, error) {
	return providers.Opened(New(s))
}

// New reads QUANT_API_TOKEN, QUANT_ORGANIZATION and QUANT_BASE_URL from
// s.Getenv.
func New(s providers.Settings) (*Provider, error) {
	token, err := s.Require("QUANT_API_TOKEN", "create an API token in the Quant dashboard and export it as QUANT_API_TOKEN")
	if err != nil {
		return nil, err
	}
	org, err := s.Require("QUANT_ORGANIZATION", "export your Quant organization's ID (as in the dashboard's URLs) as QUANT_ORGANIZATION")
	if err != nil {
		return nil, err
	}
	base, err := s.BaseURL("QUANT_BASE_URL", DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		http:      s.Client(),
		endpoint:  base + "/api/v3/organizations/" + url.PathEscape(org) + "/ai/files",
		token:     token,
		directMax: DirectMax,
		now:       time.Now,
		log:       log,
	}, nil
}

// presignRequest asks for an upload URL instead of sending the bytes.
type presignRequest struct {
	RequestUploadURL bool   `json:"requestUploadUrl"`
	Filename         string `json:"filename"`
	ContentType      string `json:"contentType"`
	Size             *int64 `json:"size,omitempty"`
}

// fileAnswer is Quant's 201 for both modes; which fields are set depends
// on the mode.
type fileAnswer struct {
	FileID    string `json:"fileId"`
	S3URI     string `json:"s3Uri"` // direct upload only: s3://<bucket>/<key>
	UploadURL string `json:"uploadUrl"`
	S3Key     string `json:"s3Key"`
	ExpiresIn int64  `json:"expiresIn"`
}

func (p *Provider) header() http.Header {
	return http.Header{"Authorization": {"Bearer " + p.token}}
}

// RequestUpload asks Quant for a presigned S3 PUT URL. Quant does not sign
// a Content-MD5, but S3 checks one that is sent: the slot's headers carry
// it, so S3 stores nothing but the hashed bytes.
func (p *Provider) RequestUpload(ctx context.Context, req providers.UploadRequest) (providers.Slot, error) {
	in := presignRequest{RequestUploadURL: true, Filename: req.Filename, ContentType: req.Mimetype}
	if req.Size >= 0 {
		in.Size = &req.Size
	}
	var out fileAnswer
	if err := p.http.JSON(ctx, http.MethodPost, p.endpoint, p.header(), in, &out); err != nil {
		return providers.Slot{}, apiError(err)
	}
	if !providers.HTTPURL(out.UploadURL) {
		// The URL itself is not quoted: its query is a credential.
		return providers.Slot{}, fmt.Errorf("%s: the upload request answered without a usable uploadUrl", Name)
	}
	if out.S3Key == "" {
		// The fileId is no stand-in: a descriptor's s3key must be where
		// the bytes land in S3, as it is with every other provider.
		return providers.Slot{}, fmt.Errorf("%s: the upload request answered without an s3Key, so there is no S3 object key to describe the file by (fileId %q is Quant's handle, not a key); try again, and if Quant keeps leaving s3Key out, stage the file with another provider", Name, out.FileID)
	}
	ttl := DefaultURLTTL
	if out.ExpiresIn > 0 {
		ttl = time.Duration(out.ExpiresIn) * time.Second
	}
	return providers.Slot{
		ID:             out.FileID,
		Key:            out.S3Key,
		FileID:         out.FileID,
		URL:            out.UploadURL,
		Method:         http.MethodPut,
		Headers:        map[string]string{"Content-Type": req.Mimetype, "Content-MD5": providers.ContentMD5(req.MD5)},
		ExpiresAt:      p.now().Add(ttl),
		Type:           providers.SlotNew,
		StorageBackend: "s3",
	}, nil
}

// Upload PUTs the bytes to the slot's presigned URL.
func (p *Provider) Upload(ctx context.Context, slot providers.Slot, body providers.Body) error {
	return providers.PresignedUpload(ctx, p.http, Name, slot, body)
}

// Store sends small files in one request and larger ones through a
// presigned URL. A direct upload Quant refuses as too large (413) is sent
// the presigned way, which is what Quant's 413 says to do.
func (p *Provider) Store(ctx context.Context, req providers.UploadRequest, body providers.Body) (providers.Slot, error) {
	if body.Size <= p.directMax {
		slot, err := p.storeDirect(ctx, req, body)
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Status != http.StatusRequestEntityTooLarge {
			return slot, err
		}
		p.log.WarnContext(ctx, "quant refused a direct upload as too large; using a presigned upload", "bytes", body.Size)
	}
	req.Size = body.Size
	slot, err := p.RequestUpload(ctx, req)
	if err != nil {
		return providers.Slot{}, fmt.Errorf("requesting an upload URL: %w", err)
	}
	if err := p.Upload(ctx, slot, body); err != nil {
		return providers.Slot{}, fmt.Errorf("uploading: %w", err)
	}
	return slot, nil
}

// directFields are the direct upload's fields besides content.
type directFields struct {
	Filename    string `json:"filename"`
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
}

// storeDirect sends the bytes base64-encoded in the JSON body. The body is
// streamed from the spool through the encoder, so memory stays constant
// whatever the size, and is rebuilt from the start for every attempt.
func (p *Provider) storeDirect(ctx context.Context, req providers.UploadRequest, body providers.Body) (providers.Slot, error) {
	rest, err := json.Marshal(directFields{Filename: req.Filename, ContentType: req.Mimetype, Size: body.Size})
	if err != nil {
		return providers.Slot{}, err
	}
	// {"content":"<base64>","filename":...,"contentType":...,"size":N}
	head := []byte(`{"content":"`)
	tail := append([]byte(`",`), rest[1:]...)
	length := int64(len(head)+len(tail)) + int64(base64.StdEncoding.EncodedLen(int(body.Size)))
	resp, err := p.http.Do(ctx, func(ctx context.Context) (*http.Request, error) {
		pr, pw := io.Pipe()
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, pr)
		if err != nil {
			pr.Close()
			return nil, err
		}
		// The transport closes pr when it is done with the body, early
		// or not, which ends the writer.
		go func() { pw.CloseWithError(writeDirect(pw, head, body.Reader(), tail)) }()
		r.ContentLength = length
		r.Header = p.header()
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json")
		return r, nil
	})
	if err != nil {
		return providers.Slot{}, apiError(err)
	}
	defer resp.Body.Close()
	var out fileAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return providers.Slot{}, fmt.Errorf("%s: POST %s: malformed JSON answer: %w", Name, p.endpoint, err)
	}
	// A direct upload's answer has no s3Key; its s3Uri says where the
	// bytes landed, and a descriptor's s3key must be that S3 object key
	// in both modes. The fileId is kept beside it, never in its place.
	key, ok := objectKey(out.S3URI)
	if !ok {
		// Not quoted: a value that is no s3:// URI might be a presigned
		// URL, whose query is a credential.
		what := "without an s3Uri"
		if out.S3URI != "" {
			what = "an s3Uri that is not s3://<bucket>/<key>"
		}
		return providers.Slot{}, fmt.Errorf("%s: the direct upload answered %s, so there is no S3 object key to describe the file by (fileId %q is Quant's handle, not a key); try again, and if it keeps happening, stage the file with another provider", Name, what, out.FileID)
	}
	return providers.Slot{ID: out.FileID, Key: key, FileID: out.FileID, Type: providers.SlotNew, StorageBackend: "s3"}, nil
}

// objectKey is the key of an S3 URI, s3://<bucket>/<key>. The key is taken
// as written, not URL-decoded: S3 URIs (as AWS's tools write them) do not
// escape keys, which may hold %, ? or #.
func objectKey(uri string) (string, bool) {
	const scheme = "s3://" // case-insensitive, as URI schemes are
	if len(uri) < len(scheme) || !strings.EqualFold(uri[:len(scheme)], scheme) {
		return "", false
	}
	bucket, key, ok := strings.Cut(uri[len(scheme):], "/")
	if !ok || bucket == "" || key == "" {
		return "", false
	}
	return key, true
}

func writeDirect(w io.Writer, head []byte, content io.Reader, tail []byte) error {
	if _, err := w.Write(head); err != nil {
		return err
	}
	enc := base64.NewEncoder(base64.StdEncoding, w)
	if _, err := io.Copy(enc, content); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err := w.Write(tail)
	return err
}
