package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestStartupFailures: every failure before serving begins is one plain
// line naming the setting to change, exit 2 for a setting config refuses
// and 1 for what start-up finds, and nothing on stdout. $DIR is a fresh
// temporary directory, $BUSY an address something already listens on.
func TestStartupFailures(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	const fix = "; choose a writable folder with --data-dir or FILESTAGE_DATA_DIR\n"
	const usage = "Run 'filestage --help' for usage.\n"
	tests := []struct {
		name string
		// setup prepares $DIR.
		setup func(t *testing.T, dir string)
		// unwritable: the case relies on a folder's mode, which root
		// ignores.
		unwritable bool
		args       []string
		env        map[string]string
		code       int
		want       string
	}{
		{name: "data dir in a read-only folder", unwritable: true,
			setup: func(t *testing.T, dir string) { chmod(t, filepath.Join(dir, "ro"), 0o500) },
			env:   map[string]string{"FILESTAGE_DATA_DIR": "$DIR/ro/data"}, code: 1,
			want: "filestage: --data-dir $DIR/ro/data: cannot create $DIR/ro/data: permission denied" + fix},
		{name: "read-only data dir", unwritable: true,
			setup: func(t *testing.T, dir string) { chmod(t, filepath.Join(dir, "data"), 0o500) },
			env:   map[string]string{"FILESTAGE_DATA_DIR": "$DIR/data"}, code: 1,
			want: "filestage: --data-dir $DIR/data: cannot write in $DIR/data: permission denied" + fix},
		// These fail for root too.
		{name: "data dir below a file",
			setup: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "file")) },
			args:  []string{"--data-dir", "$DIR/file/data"}, code: 1,
			want: "filestage: --data-dir $DIR/file/data: $DIR/file is not a folder" + fix},
		{name: "data dir is a file",
			setup: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "file")) },
			args:  []string{"--data-dir", "$DIR/file"}, code: 1,
			want: "filestage: --data-dir $DIR/file: $DIR/file is not a folder" + fix},
		{name: "temporary files' folder is a file",
			setup: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "tmp")) },
			env:   map[string]string{"FILESTAGE_DATA_DIR": "$DIR"}, code: 1,
			want: "filestage: --data-dir $DIR: $DIR/tmp is not a folder" + fix},
		{name: "data dir whose parent is missing",
			args: []string{"serve", "--data-dir", "$DIR/typo/data"}, code: 2,
			want: "filestage: --data-dir $DIR/typo/data: $DIR/typo does not exist; create it first, or choose another folder with --data-dir or FILESTAGE_DATA_DIR\n" + usage},
		{name: "no HOME, no XDG_DATA_HOME", code: 2,
			want: "filestage: no data directory: HOME and XDG_DATA_HOME are unset; choose a folder with --data-dir or FILESTAGE_DATA_DIR\n" + usage},
		{name: "port in use over HTTP",
			args: []string{"serve", "--transport", "http", "--listen", "$BUSY"}, env: map[string]string{"FILESTAGE_DATA_DIR": "$DIR"}, code: 1,
			want: "filestage: --listen $BUSY: address already in use; choose another address with --listen or FILESTAGE_LISTEN\n"},
		{name: "port in use for stdio's upload URLs",
			env: map[string]string{"FILESTAGE_DATA_DIR": "$DIR", "FILESTAGE_LISTEN": "$BUSY"}, code: 1,
			want: "filestage: --listen $BUSY: address already in use; choose another address with --listen or FILESTAGE_LISTEN\n"},
		{name: "unknown provider",
			args: []string{"--provider", "dropbox"}, env: map[string]string{"FILESTAGE_DATA_DIR": "$DIR"}, code: 1,
			want: "filestage: --provider \"dropbox\" is not a provider: choose one of alloy, composio, local, quant, recoup, s3\n"},
		{name: "provider setting missing",
			args: []string{"serve", "--transport", "http", "--listen", "127.0.0.1:0", "--provider", "composio"}, env: map[string]string{"FILESTAGE_DATA_DIR": "$DIR"}, code: 1,
			want: "filestage: provider composio: COMPOSIO_API_KEY is not set: create an API key in the Composio dashboard (Settings, API Keys) and export it as COMPOSIO_API_KEY\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.unwritable && (os.Geteuid() == 0 || runtime.GOOS == "windows") {
				// Root writes in a 0500 folder anyway (and Windows
				// ignores the mode); the cases with a file in the
				// way cover the same path for root.
				t.Skip("root, or Windows: a folder's mode does not stop writes")
			}
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			expand := strings.NewReplacer("$DIR", dir, "$BUSY", busy.Addr().String()).Replace
			var args []string
			for _, a := range tt.args {
				args = append(args, expand(a))
			}
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = expand(v)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] }, nil)
			if want := expand(tt.want); code != tt.code || stderr.String() != want || stdout.Len() != 0 {
				t.Errorf("exit %d, want %d\nstderr:\n%s\nwant:\n%s\nstdout: %q", code, tt.code, stderr.String(), want, stdout.String())
			}
		})
	}
}

// chmod makes the folder path with mode, and gives it back its rights at
// cleanup, so that the temporary directory can be removed.
func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(path, 0o700) })
}

func writeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
}
