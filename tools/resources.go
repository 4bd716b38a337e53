package tools

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/providers"
)

// ResourcePrefix begins the URI of every stored file offered as a
// resource; the rest is its key.
const ResourcePrefix = "filestage://files/"

// resourcesPage is how many files one resources/list answer holds.
const resourcesPage = 100

// DefaultInlineResourceBytes is the largest file resources/read returns
// as bytes when the server sets no cap: larger ones come as a link.
// MaxInlineResourceBytes bounds any cap: a read holds a few times it.
const (
	DefaultInlineResourceBytes = 1 << 20
	MaxInlineResourceBytes     = 4 << 20
)

// addResources offers each caller the files it staged in an indexing
// store: resources/list pages through them, and a template reads any by
// key. mcp-go lists only resources registered up front or per session,
// so the list is answered from the index in its after-list hook, the one
// place where an answer can depend on the caller.
func (s *Service) addResources(srv *server.MCPServer, idx providers.Index) {
	srv.AddResourceTemplate(mcp.NewResourceTemplate(ResourcePrefix+"{+key}", "Staged file",
		mcp.WithTemplateDescription("A file you staged, by its s3key: small files read as their bytes, larger ones as a download link (text/uri-list).")),
		func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return s.readResource(ctx, idx, req.Params.URI)
		})
	hooks := srv.GetHooks()
	if hooks == nil {
		hooks = &server.Hooks{}
		server.WithHooks(hooks)(srv)
	}
	hooks.AddAfterListResources(func(ctx context.Context, _ any, req *mcp.ListResourcesRequest, res *mcp.ListResourcesResult) {
		if res == nil {
			return
		}
		list, next, err := s.listResources(ctx, idx, string(req.Params.Cursor))
		if err != nil {
			s.Logger.WarnContext(ctx, "listing staged files failed", "client", auth.FromContext(ctx).Name, "err", err)
			return
		}
		res.Resources, res.NextCursor = list, mcp.Cursor(next)
	})
}

// listResources is a page of the caller's own files, after the key the
// cursor names.
func (s *Service) listResources(ctx context.Context, idx providers.Index, cursor string) ([]mcp.Resource, string, error) {
	var after string
	if cursor != "" {
		// Standard base64, as mcp-go decodes every cursor before this.
		b, err := base64.StdEncoding.DecodeString(cursor)
		if err != nil {
			return nil, "", fmt.Errorf("cursor: %w", err)
		}
		after = string(b)
	}
	objs, err := idx.Objects(ctx, auth.FromContext(ctx).Namespace, after, resourcesPage)
	if err != nil {
		return nil, "", err
	}
	list := make([]mcp.Resource, 0, len(objs))
	for _, o := range objs {
		size := o.Size
		r := mcp.NewResource(ResourcePrefix+o.Key, o.Name, mcp.WithMIMEType(o.Mimetype), mcp.WithResourceSize(size),
			mcp.WithResourceDescription(describe(o)),
			mcp.WithLastModified(o.Created.UTC().Format(time.RFC3339)))
		list = append(list, r)
	}
	next := ""
	if len(objs) == resourcesPage {
		next = base64.StdEncoding.EncodeToString([]byte(objs[len(objs)-1].Key))
	}
	return list, next, nil
}

func describe(o providers.Object) string {
	d := "Staged file; its descriptor is {name, mimetype, s3key: " + o.Key + "}."
	if !o.Expires.IsZero() {
		d += " Kept until " + o.Expires.UTC().Format(time.RFC3339) + "."
	}
	return d
}

// errNoSuchFile is what resources/read says of a file that is not the
// caller's to read, stored or not: the two are not told apart.
var errNoSuchFile = errors.New("no such staged file: list them with resources/list, or stage it again")

// readResource returns one of the caller's files: its bytes up to the
// inline cap, else a download link.
func (s *Service) readResource(ctx context.Context, idx providers.Index, uri string) ([]mcp.ResourceContents, error) {
	key, ok := strings.CutPrefix(uri, ResourcePrefix)
	if !ok {
		return nil, errNoSuchFile
	}
	o, ok, err := idx.Object(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading the index: %w", err)
	}
	if !ok || o.Namespace != auth.FromContext(ctx).Namespace {
		return nil, errNoSuchFile
	}
	inline := min(s.InlineResourceBytes, MaxInlineResourceBytes)
	if inline <= 0 {
		inline = DefaultInlineResourceBytes
	}
	if o.Size > inline {
		link, _ := idx.DownloadURL(o.Key, o.Name)
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "text/uri-list", Text: link + "\r\n"}}, nil
	}
	f, err := idx.OpenObject(o.Key)
	if err != nil {
		return nil, errNoSuchFile
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, inline+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", o.Key, err)
	}
	return []mcp.ResourceContents{mcp.BlobResourceContents{URI: uri, MIMEType: o.Mimetype, Blob: base64.StdEncoding.EncodeToString(b)}}, nil
}
