// Package composio stages files in Composio's file storage: Composio hands
// out a presigned URL per file (deduplicated by MD5), and the bytes go
// straight to the storage behind it (S3 or Azure Blob Storage).
package composio

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/filestage/filestage/providers"
)

// Name is the provider's registry name.
const Name = "composio"

// DefaultBaseURL is Composio's API when COMPOSIO_BASE_URL is not set.
const DefaultBaseURL = "https://backend.composio.dev"

// DefaultURLTTL is assumed for a presigned URL that does not say when it
// expires; Composio's documented URLs carry X-Amz-Expires=3600.
const DefaultURLTTL = time.Hour

// azureBackend is the storage_backend value that needs x-ms-blob-type.
const azureBackend = "azure_blob_storage"

// Provider talks to Composio's files API.
type Provider struct {
	http   *providers.Client
	base   string
	apiKey string
	now    func() time.Time
}

// Open is the provider's registry factory.
func Open(_ context.Context, s providers.Settings) (providers.Provider, error) {
	return providers.Opened(New(s))
}

// New reads COMPOSIO_API_KEY and COMPOSIO_BASE_URL from s.Getenv.
func New(s providers.Settings) (*Provider, error) {
	key, err := s.Require("COMPOSIO_API_KEY", "create an API key in the Composio dashboard (Settings, API Keys) and export it as COMPOSIO_API_KEY")
	if err != nil {
		return nil, err
	}
	base, err := s.BaseURL("COMPOSIO_BASE_URL", DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	return &Provider{http: s.Client(), base: base, apiKey: key, now: time.Now}, nil
}

// uploadRequest is the body of POST /api/v3/files/upload/request.
type uploadRequest struct {
	ToolkitSlug string `json:"toolkit_slug"`
	ToolSlug    string `json:"tool_slug"`
	Filename    string `json:"filename"`
	Mimetype    string `json:"mimetype"`
	MD5         string `json:"md5"` // lower-case hex
}

// uploadAnswer is every 200 shape Composio sends.
type uploadAnswer struct {
	ID              string `json:"id"`
	Key             string `json:"key"`
	NewPresignedURL string `json:"new_presigned_url"`
	// LegacyPresignedURL is the deprecated camel-case copy of NewPresignedURL.
	LegacyPresignedURL string `json:"newPresignedUrl"`
	// UpdatePresignedURL comes with type update.
	UpdatePresignedURL string `json:"update_presigned_url"`
	Type               string `json:"type"`
	Metadata           struct {
		StorageBackend string `json:"storage_backend"`
	} `json:"metadata"`
}

// RequestUpload asks Composio for a presigned URL for the file.
func (p *Provider) RequestUpload(ctx context.Context, req providers.UploadRequest) (providers.Slot, error) {
	in := uploadRequest{
		ToolkitSlug: req.ToolkitSlug,
		ToolSlug:    req.ToolSlug,
		Filename:    req.Filename,
		Mimetype:    req.Mimetype,
		MD5:         hex.EncodeToString(req.MD5[:]),
	}
	var out uploadAnswer
	header := http.Header{"X-Api-Key": {p.apiKey}}
	if err := p.http.JSON(ctx, http.MethodPost, p.base+"/api/v3/files/upload/request", header, in, &out); err != nil {
		return providers.Slot{}, apiError(err)
	}
	return slotFrom(out, req, p.now())
}

// slotFrom turns Composio's answer into a slot, refusing answers it cannot
// upload to rather than guessing.
func slotFrom(a uploadAnswer, req providers.UploadRequest, now time.Time) (providers.Slot, error) {
	typ := providers.SlotType(a.Type)
	switch typ {
	case providers.SlotNew, providers.SlotUpdate, providers.SlotExisting:
	case "":
		// type is deprecated; an answer without it is a plain upload URL.
		typ = providers.SlotNew
	default:
		return providers.Slot{}, fmt.Errorf("%s: the upload request answered an unknown type %q", Name, a.Type)
	}
	if a.Key == "" {
		return providers.Slot{}, fmt.Errorf("%s: the upload request answered without a key", Name)
	}
	target := cmp.Or(a.NewPresignedURL, a.LegacyPresignedURL)
	if typ == providers.SlotUpdate {
		target = cmp.Or(a.UpdatePresignedURL, target)
	}
	if typ != providers.SlotExisting && !providers.HTTPURL(target) {
		// The URL itself is not quoted: its query is a credential.
		return providers.Slot{}, fmt.Errorf("%s: the upload request answered type %s without a usable presigned URL", Name, typ)
	}
	headers := map[string]string{
		"Content-Type": req.Mimetype,
		"Content-MD5":  providers.ContentMD5(req.MD5),
	}
	if a.Metadata.StorageBackend == azureBackend {
		// Azure's Put Blob refuses a request without the blob type.
		headers["x-ms-blob-type"] = "BlockBlob"
	}
	expires, ok := providers.URLExpiry(target)
	if !ok {
		expires = now.Add(DefaultURLTTL)
	}
	return providers.Slot{
		ID:             a.ID,
		Key:            a.Key,
		URL:            target,
		Method:         http.MethodPut,
		Headers:        headers,
		ExpiresAt:      expires,
		Type:           typ,
		StorageBackend: a.Metadata.StorageBackend,
	}, nil
}

// Upload PUTs the bytes to the slot's presigned URL.
func (p *Provider) Upload(ctx context.Context, slot providers.Slot, body providers.Body) error {
	return providers.PresignedUpload(ctx, p.http, Name, slot, body)
}
