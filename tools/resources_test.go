package tools

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/providers"
)

// fakeIndex is a store that indexes its objects, held in memory in key
// order.
type fakeIndex struct {
	fakeProvider
	objects []providers.Object
	bytes   map[string][]byte
}

func (x *fakeIndex) Objects(_ context.Context, namespace, after string, limit int) ([]providers.Object, error) {
	var out []providers.Object
	for _, o := range x.objects {
		if o.Namespace == namespace && o.Key > after && len(out) < limit {
			out = append(out, o)
		}
	}
	return out, nil
}

func (x *fakeIndex) Object(_ context.Context, key string) (providers.Object, bool, error) {
	i := slices.IndexFunc(x.objects, func(o providers.Object) bool { return o.Key == key })
	if i < 0 {
		return providers.Object{}, false, nil
	}
	return x.objects[i], true, nil
}

func (x *fakeIndex) OpenObject(key string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(string(x.bytes[key]))), nil
}

func (x *fakeIndex) DownloadURL(key, name string) (string, time.Time) {
	return "https://files.test/" + key + "?name=" + name, time.Unix(2e9, 0)
}

// TestResourcesPaging: the caller's files, and only its own, page through
// resources/list in key order however many there are; keys of every
// length and alphabet make cursors mcp-go must decode before filestage.
func TestResourcesPaging(t *testing.T) {
	x := &fakeIndex{bytes: map[string][]byte{}}
	for i := range 2*resourcesPage + 37 {
		for _, ns := range []string{"", "p-other"} {
			key := fmt.Sprintf("gmail/GMAIL_SEND_EMAIL/%032x%s", i, strings.Repeat("-_~", i%5))
			if ns != "" {
				key = ns + "/" + key
			}
			x.objects = append(x.objects, providers.Object{Key: key, Name: fmt.Sprintf("f%d.txt", i), Mimetype: "text/plain", Size: 3, Namespace: ns})
		}
	}
	slices.SortFunc(x.objects, func(a, b providers.Object) int { return strings.Compare(a.Key, b.Key) })
	f := newFixture(t, x, 1<<20)
	var got []string
	req := mcp.ListResourcesRequest{}
	for pages := 0; ; pages++ {
		res, err := f.client.ListResources(context.Background(), req)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		for _, r := range res.Resources {
			got = append(got, strings.TrimPrefix(r.URI, ResourcePrefix))
		}
		if res.NextCursor == "" {
			break
		}
		req.Params.Cursor = res.NextCursor
	}
	var want []string
	for _, o := range x.objects {
		if o.Namespace == "" {
			want = append(want, o.Key)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("listed %d files, want %d (the caller's own, in order)", len(got), len(want))
	}
}

// TestReadResource: bytes up to the inline cap, a link beyond, and the
// same refusal for another caller's file as for none.
func TestReadResource(t *testing.T) {
	x := &fakeIndex{bytes: map[string][]byte{"a/B_C/small.txt": []byte("abc"), "a/B_C/big.bin": make([]byte, 40)}}
	x.objects = []providers.Object{
		{Key: "a/B_C/big.bin", Name: "big.bin", Mimetype: "application/octet-stream", Size: 40},
		{Key: "a/B_C/small.txt", Name: "small.txt", Mimetype: "text/plain", Size: 3},
		{Key: "p-other/a/B_C/theirs.txt", Name: "theirs.txt", Mimetype: "text/plain", Size: 3, Namespace: "p-other"},
	}
	f := newFixtureWith(t, x, 1<<20, func(s *Service) { s.InlineResourceBytes = 16 })
	read := func(uri string) ([]mcp.ResourceContents, error) {
		req := mcp.ReadResourceRequest{}
		req.Params.URI = uri
		res, err := f.client.ReadResource(context.Background(), req)
		if err != nil {
			return nil, err
		}
		return res.Contents, nil
	}
	got, err := read(ResourcePrefix + "a/B_C/small.txt")
	if err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	if b, ok := got[0].(mcp.BlobResourceContents); !ok || b.Blob != base64.StdEncoding.EncodeToString([]byte("abc")) || b.MIMEType != "text/plain" {
		t.Errorf("small: %+v", got[0])
	}
	got, err = read(ResourcePrefix + "a/B_C/big.bin")
	if err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	if l, ok := got[0].(mcp.TextResourceContents); !ok || l.MIMEType != "text/uri-list" || l.Text != "https://files.test/a/B_C/big.bin?name=big.bin\r\n" {
		t.Errorf("big: %+v", got[0])
	}
	for _, uri := range []string{ResourcePrefix + "p-other/a/B_C/theirs.txt", ResourcePrefix + "a/B_C/none.txt", ResourcePrefix + "a/B_C/../B_C/small.txt"} {
		if _, err := read(uri); err == nil || !strings.Contains(err.Error(), "no such staged file") {
			t.Errorf("%s: %v", uri, err)
		}
	}
}
