package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/filestage/filestage/providers/local"
)

// storedFile is one line of `filestage ls --json`.
type storedFile struct {
	Key       string     `json:"key"`
	Name      string     `json:"name"`
	Mimetype  string     `json:"mimetype"`
	Size      int64      `json:"size"`
	MD5       string     `json:"md5"`
	Owner     string     `json:"owner,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Ls prints the local store's files whose keys start with prefix: a table
// for people, or one JSON object per line for scripts.
func Ls(ctx context.Context, store *local.Provider, prefix string, asJSON bool, stdout io.Writer) error {
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "KEY\tSIZE\tEXPIRES\tNAME")
	}
	q := local.Query{Prefix: prefix, Limit: 1000}
	for {
		page, err := store.List(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range page {
			if asJSON {
				f := storedFile{Key: e.Key, Name: e.Name, Mimetype: e.Mimetype, Size: e.Size, MD5: e.MD5, Owner: e.Owner, CreatedAt: e.Created}
				if !e.Expires.IsZero() {
					f.ExpiresAt = &e.Expires
				}
				if err := enc.Encode(f); err != nil {
					return err
				}
				continue
			}
			expires := "never"
			if !e.Expires.IsZero() {
				expires = e.Expires.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Key, strconv.FormatInt(e.Size, 10), expires, strconv.Quote(e.Name))
		}
		if len(page) < q.Limit {
			break
		}
		q.After = page[len(page)-1].Key
	}
	return tw.Flush()
}

// Rm removes each key's file and entry, and says which were not there.
func Rm(ctx context.Context, store *local.Provider, keys []string, stdout, stderr io.Writer) error {
	failed := false
	for _, k := range keys {
		switch ok, err := store.Remove(ctx, k); {
		case err != nil:
			fmt.Fprintf(stderr, "filestage: %s: %v\n", k, err)
			failed = true
		case !ok:
			fmt.Fprintf(stderr, "filestage: %s: no such file in the store (filestage ls lists them)\n", k)
			failed = true
		default:
			fmt.Fprintf(stdout, "removed %s\n", k)
		}
	}
	if failed {
		return ErrFailed
	}
	return nil
}

// GC removes the expired files now, as the server's sweeper does.
func GC(ctx context.Context, store *local.Provider, stdout io.Writer) error {
	n, err := store.Sweep(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed %d expired files\n", n)
	return nil
}
