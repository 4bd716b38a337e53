// Package alloy stages files in Alloy's connector file storage: Alloy hands
// out a presigned S3 URL per file (deduplicated by MD5) and the bytes go
// straight to S3.
package alloy

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/filestage/filestage/providers"
)

// Name is the provider's registry name.
const Name = "alloy"

// DefaultBaseURL is Alloy's API when ALLOY_BASE_URL is not set.
const DefaultBaseURL = "https://production.runalloy.com"

// DefaultAPIVersion is sent as x-api-version when ALLOY_API_VERSION is not set.
const DefaultAPIVersion = "2025-09"

// DefaultURLTTL is assumed for a presigned URL that does not say when it
// expires. Alloy does not document a lifetime; this is the AWS SDKs'
// default, the shortest one likely.
const DefaultURLTTL = 15 * time.Minute

// Provider talks to Alloy's connectivity API.
type Provider struct {
	http    *providers.Client
	base    string
	apiKey  string
	version string
	now     func() time.Time
}

// Open is the provider's registry factory.
func Open(_ context.Context, s providers.Settings) (providers.Provider, error) {
	return providers.Opened(New(s))
}

// New reads ALLOY_API_KEY, ALLOY_BASE_URL and ALLOY_API_VERSION from s.Getenv.
func New(s providers.Settings) (*Provider, error) {
	key, err := s.Require("ALLOY_API_KEY", "create an API key in the Alloy dashboard (Settings, API Keys) and export it as ALLOY_API_KEY")
	if err != nil {
		return nil, err
	}
	base, err := s.BaseURL("ALLOY_BASE_URL", DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	version := cmp.Or(s.Env("ALLOY_API_VERSION"), DefaultAPIVersion)
	return &Provider{http: s.Client(), base: base, apiKey: key, version: version, now: time.Now}, nil
}

// uploadRequest is the body of POST /connectors/files/upload/request. Alloy
// does not scope files by toolkit or tool, so those are not sent.
type uploadRequest struct {
	Filename string `json:"filename"`
	MimeType string `json:"mimeType"`
	MD5      string `json:"md5"` // hex; Alloy takes hex or base64
}

type uploadAnswer struct {
	PresignedURL struct {
		MD5          string `json:"md5"` // base64
		PresignedURL string `json:"presignedUrl"`
		Type         string `json:"type"`
		S3Key        string `json:"s3Key"`
	} `json:"presignedUrl"`
}

// RequestUpload asks Alloy for a presigned S3 URL for the file.
func (p *Provider) RequestUpload(ctx context.Context, req providers.UploadRequest) (providers.Slot, error) {
	in := uploadRequest{Filename: req.Filename, MimeType: req.Mimetype, MD5: hex.EncodeToString(req.MD5[:])}
	header := http.Header{
		"Authorization": {"Bearer " + p.apiKey},
		"X-Api-Version": {p.version},
	}
	var out uploadAnswer
	if err := p.http.JSON(ctx, http.MethodPost, p.base+"/connectors/files/upload/request", header, in, &out); err != nil {
		return providers.Slot{}, apiError(err)
	}
	return slotFrom(out, req, p.now())
}

// slotFrom turns Alloy's answer into a slot, refusing answers it cannot
// upload to, or that are about other bytes, rather than guessing.
func slotFrom(a uploadAnswer, req providers.UploadRequest, now time.Time) (providers.Slot, error) {
	pu := a.PresignedURL
	typ := providers.SlotType(pu.Type)
	switch typ {
	case providers.SlotNew, providers.SlotExisting:
	default:
		return providers.Slot{}, fmt.Errorf("%s: the upload request answered an unknown type %q", Name, pu.Type)
	}
	if pu.S3Key == "" {
		return providers.Slot{}, fmt.Errorf("%s: the upload request answered without an s3Key", Name)
	}
	if pu.MD5 != "" {
		// Alloy echoes the MD5 it signed for; another one means the URL
		// would refuse our bytes, or the key holds something else.
		if got, err := base64.StdEncoding.DecodeString(pu.MD5); err != nil || !bytes.Equal(got, req.MD5[:]) {
			return providers.Slot{}, fmt.Errorf("%s: the upload request answered for MD5 %q, not for this file's", Name, pu.MD5)
		}
	}
	if typ == providers.SlotNew && !providers.HTTPURL(pu.PresignedURL) {
		// The URL itself is not quoted: its query is a credential.
		return providers.Slot{}, fmt.Errorf("%s: the upload request answered type new without a usable presigned URL", Name)
	}
	expires, ok := providers.URLExpiry(pu.PresignedURL)
	if !ok {
		expires = now.Add(DefaultURLTTL)
	}
	return providers.Slot{
		// Alloy gives no separate ID; the key is what identifies the file.
		ID:     pu.S3Key,
		Key:    pu.S3Key,
		URL:    pu.PresignedURL,
		Method: http.MethodPut,
		Headers: map[string]string{
			"Content-Type": req.Mimetype,
			"Content-MD5":  providers.ContentMD5(req.MD5),
		},
		ExpiresAt:      expires,
		Type:           typ,
		StorageBackend: "s3",
	}, nil
}

// Upload PUTs the bytes to the slot's presigned URL.
func (p *Provider) Upload(ctx context.Context, slot providers.Slot, body providers.Body) error {
	return providers.PresignedUpload(ctx, p.http, Name, slot, body)
}
