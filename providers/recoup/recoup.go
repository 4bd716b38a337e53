// Package recoup stages files through Recoup's connector API, which
// fetches a URL server-side and stores it in Connector storage. Recoup has
// no presigned uploads, so this provider only stages URLs.
package recoup

import (
	"context"
	"fmt"
	"net/http"

	"github.com/filestage/filestage/providers"
	// Aliased: the package tests name a helper source.
	filesource "github.com/filestage/filestage/source"
)

// Name is the provider's registry name.
const Name = "recoup"

// DefaultBaseURL is Recoup's API when RECOUP_BASE_URL is not set.
const DefaultBaseURL = "https://api.recoupable.dev"

// Provider talks to Recoup's connector files API.
type Provider struct {
	http   *providers.Client
	base   string
	apiKey string
}

var _ providers.URLStager = (*Provider)(nil)

// Open is the provider's registry factory.
func Open(_ context.Context, s providers.Settings) (providers.Provider, error) {
	return providers.Opened(New(s))
}

// New reads RECOUP_API_KEY and RECOUP_BASE_URL from s.Getenv.
func New(s providers.Settings) (*Provider, error) {
	key, err := s.Require("RECOUP_API_KEY", "create an API key in Recoup (see https://docs.recoupable.dev/quickstart#api-keys) and export it as RECOUP_API_KEY")
	if err != nil {
		return nil, err
	}
	base, err := s.BaseURL("RECOUP_BASE_URL", DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	return &Provider{http: s.Client(), base: base, apiKey: key}, nil
}

// stageRequest is the body of POST /api/connectors/files. Recoup scopes
// the file by the tool slug alone; the toolkit is implied by it. It takes
// no filename (Recoup names the file from the URL), so a caller's name
// goes into the descriptor only.
type stageRequest struct {
	URL      string `json:"url"`
	ToolSlug string `json:"toolSlug"`
}

type stageAnswer struct {
	Success  bool   `json:"success"`
	Name     string `json:"name"`
	Mimetype string `json:"mimetype"`
	S3Key    string `json:"s3key"`
}

// StageURL has Recoup fetch the URL and store it; the answer is the
// descriptor, named as the caller asked when it did.
func (p *Provider) StageURL(ctx context.Context, req providers.StageURLRequest) (providers.Descriptor, error) {
	var out stageAnswer
	header := http.Header{"X-Api-Key": {p.apiKey}}
	if err := p.http.JSON(ctx, http.MethodPost, p.base+"/api/connectors/files", header, stageRequest{URL: req.URL, ToolSlug: req.ToolSlug}, &out); err != nil {
		return providers.Descriptor{}, apiError(err)
	}
	if !out.Success || out.S3Key == "" || out.Name == "" || out.Mimetype == "" {
		return providers.Descriptor{}, fmt.Errorf("%s: the staging answer lacks success or a descriptor field (success %v, name %q, mimetype %q, s3key %q)",
			Name, out.Success, out.Name, out.Mimetype, out.S3Key)
	}
	d := providers.Descriptor{Name: out.Name, Mimetype: out.Mimetype, S3Key: out.S3Key}
	if name := filesource.SanitizeName(req.Filename); name != "" {
		// Recoup's request has no filename, but the descriptor's name is
		// what the connector calls the file, so the caller's name goes
		// there, given an extension for the type when it has none, as
		// the other providers' names are. (The MD5 only names files
		// that have no name.)
		d.Name = filesource.FileName(name, out.Mimetype, [16]byte{})
	}
	return d, nil
}

// RequestUpload is unsupported: Recoup has no presigned uploads.
func (p *Provider) RequestUpload(context.Context, providers.UploadRequest) (providers.Slot, error) {
	return providers.Slot{}, noUploads{}
}

// Upload is unsupported: Recoup has no presigned uploads.
func (p *Provider) Upload(context.Context, providers.Slot, providers.Body) error {
	return noUploads{}
}

// noUploads is providers.ErrUnsupported with a message that says what
// works instead.
type noUploads struct{}

func (noUploads) Error() string {
	return "recoup fetches URLs itself and has no presigned uploads: use stage_connector_file with an http(s) URL, or run filestage with --provider composio, alloy, quant, s3 or local"
}

func (noUploads) Unwrap() error { return providers.ErrUnsupported }
