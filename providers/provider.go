// Package providers defines what the tools need from a storage platform and
// keeps the registry of platforms by name. Each platform lives in a
// sub-package; the tools never import one directly.
package providers

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/filestage/filestage/spool"
)

// UploadRequest asks storage for a place to put bytes the caller has already
// hashed. Fields mirror Composio's upload request body.
type UploadRequest struct {
	ToolkitSlug string
	ToolSlug    string
	Filename    string
	Mimetype    string
	MD5         [16]byte
	// Size is the byte count, or -1 when the caller does not know it.
	Size int64
	// Namespace, when set, is the caller's own part of the storage: the
	// stores that pick keys put the caller's objects under it, so that
	// one caller learns nothing of another's files.
	Namespace string
	// Owner names the caller for the stores that keep an index of what
	// they hold.
	Owner string
}

var extPattern = regexp.MustCompile(`^\.[a-z0-9]{1,16}$`)

// ContentKey is the content address of req's bytes within its caller's
// and its tool's namespace, [<namespace>/]<toolkit>/<TOOL_SLUG>/<md5
// hex><ext>: the same bytes for the same tool and caller always land on the
// same key, which is what makes dedupe work.
func ContentKey(req UploadRequest) string {
	key := req.ToolkitSlug + "/" + req.ToolSlug + "/" + hex.EncodeToString(req.MD5[:])
	if req.Namespace != "" {
		key = req.Namespace + "/" + key
	}
	if ext := strings.ToLower(path.Ext(req.Filename)); extPattern.MatchString(ext) {
		key += ext
	}
	return key
}

// SlotType says whether the storage still needs the bytes.
type SlotType string

const (
	// SlotNew: upload the bytes to the slot's URL.
	SlotNew SlotType = "new"
	// SlotExisting: storage already holds these bytes under the key; no upload is needed.
	SlotExisting SlotType = "existing"
	// SlotUpdate: storage holds an older object under the key; uploading replaces it.
	SlotUpdate SlotType = "update"
)

// Slot is an upload slot: where and how to send the bytes, and the key the
// connector platform will know them by.
type Slot struct {
	ID  string
	Key string
	// URL, Method and Headers are exactly what a client must send; the
	// storage refuses a request that differs.
	URL            string
	Method         string
	Headers        map[string]string
	ExpiresAt      time.Time
	Type           SlotType
	StorageBackend string
	// FileID is the platform's own handle for the stored file, where it
	// has one besides the key (Quant's fileId): other calls of its API
	// name the file by it, but a connector action takes Key.
	FileID string
	// DownloadURL, where the storage offers one, reads the object back
	// (once uploaded) until DownloadExpiresAt.
	DownloadURL       string
	DownloadExpiresAt time.Time
	// ObjectExpiresAt is when the storage removes the object; zero when
	// it keeps it or cannot say.
	ObjectExpiresAt time.Time
}

// Body is bytes ready for upload: hashed, sized and readable again from the
// start as often as an upload is tried.
type Body struct {
	Data io.ReaderAt
	Size int64
	MD5  [16]byte
	// Temp, when set, is a temporary file holding the bytes, which
	// storage on the same disk may move into place instead of copying.
	// Keep never replaces a file at path: it fails with an fs.ErrExist
	// error instead, so stored objects stay as they were stored.
	Temp interface{ Keep(path string) error }
}

// Reader returns a fresh reader over the whole body.
func (b Body) Reader() *io.SectionReader { return io.NewSectionReader(b.Data, 0, b.Size) }

// Provider is a storage platform. Upload is only called for slots whose
// Type is not SlotExisting, and returns nil only once the storage has
// acknowledged all of the bytes.
type Provider interface {
	RequestUpload(ctx context.Context, req UploadRequest) (Slot, error)
	Upload(ctx context.Context, slot Slot, body Body) error
}

// Storer is implemented by providers with their own way to store bytes (in
// one request for small files, say); the returned slot says where they are.
type Storer interface {
	Store(ctx context.Context, req UploadRequest, body Body) (Slot, error)
}

// Store puts body in p's storage: through p's own Store where it has one,
// else through an upload slot, uploading unless storage already has the bytes.
func Store(ctx context.Context, p Provider, req UploadRequest, body Body) (Slot, error) {
	if s, ok := p.(Storer); ok {
		return s.Store(ctx, req, body)
	}
	slot, err := p.RequestUpload(ctx, req)
	if err != nil {
		return Slot{}, fmt.Errorf("requesting an upload slot: %w", err)
	}
	if slot.Type != SlotExisting {
		if err := p.Upload(ctx, slot, body); err != nil {
			return Slot{}, fmt.Errorf("uploading: %w", err)
		}
	}
	return slot, nil
}

// Mover is implemented by storage on filestage's own disk that keeps a
// body's Temp file by linking it into place (the local store). It copies every other
// body, and verifies it as it does, so a source that could be uploaded in
// place is cheaper spooled for it: one copy, hashed once, as it is read.
type Mover interface {
	Provider
	MovesTemp()
}

// Descriptor is a connector file_uploadable value.
type Descriptor struct {
	Name     string
	Mimetype string
	S3Key    string
}

// StageURLRequest asks a platform to fetch a URL itself.
type StageURLRequest struct {
	URL         string
	ToolkitSlug string
	ToolSlug    string
	// Filename, when set, is the caller's name for the file, already
	// sanitised: the descriptor must carry it, whatever the platform
	// would have named the file.
	Filename string
}

// URLStager is implemented by platforms that fetch URLs server-side (as
// Recoup does); the tools hand http(s) URLs over instead of fetching them,
// and refuse the sources such a platform cannot reach (file://, data:).
type URLStager interface {
	StageURL(ctx context.Context, req StageURLRequest) (Descriptor, error)
}

// Object is what a store that indexes its objects knows of one.
type Object struct {
	Key      string
	Name     string
	Mimetype string
	Size     int64
	MD5      string // lower-case hex
	// Owner is the principal that stored the object ("" when that is not
	// known, as for an entry rebuilt from the object alone); Namespace is
	// its part of the key space, which is always known.
	Owner     string
	Namespace string
	Created   time.Time
	// Expires is when retention removes the object; zero: never.
	Expires time.Time
}

// Index is implemented by storage that keeps an index of its objects (the
// local store): the tools offer each caller its own objects as MCP
// resources.
type Index interface {
	// Objects returns a page of the stored objects in namespace, in key
	// order, after the key after.
	Objects(ctx context.Context, namespace, after string, limit int) ([]Object, error)
	// Object returns key's object; ok is false when none is stored.
	Object(ctx context.Context, key string) (_ Object, ok bool, _ error)
	OpenObject(key string) (io.ReadCloser, error)
	// DownloadURL signs a read of key, offered under name.
	DownloadURL(key, name string) (string, time.Time)
}

// Runner is implemented by providers with work of their own to do while
// the server runs (the local store's retention sweeper).
type Runner interface {
	Run(ctx context.Context)
}

// Handler is implemented by providers whose upload URLs filestage itself
// serves; the transport mounts Handler at Pattern.
type Handler interface {
	Pattern() string
	http.Handler
}

// Settings is what a provider may be configured with.
type Settings struct {
	// DataDir is where a provider may keep files and secrets of its own.
	DataDir string
	// PublicURL is the base URL at which filestage's own HTTP listener is
	// reached by whoever uploads (no trailing slash).
	PublicURL string
	// MaxBytes is the largest object a provider should accept.
	MaxBytes int64
	// Getenv reads provider-specific settings.
	Getenv func(string) string
	// HTTP is the shared client with retries that providers talk through;
	// one built on a vendor SDK (s3) uses the SDK's own client and retries.
	HTTP *Client
	// Spool, when set, bounds the disk that temporary files of uploads a
	// provider receives itself take at once (the local store's PUTs).
	Spool *spool.Budget
	// Retention is how long the stores that expire objects keep one
	// after it was last staged; zero keeps objects for ever.
	Retention time.Duration
	// DownloadTTL is how long a download URL works.
	DownloadTTL time.Duration
	Logger      *slog.Logger
}
