package source

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// Errors of file:// sources.
var (
	// ErrOutsideRoots: the path is not below any allowed root, or file://
	// sources are off.
	ErrOutsideRoots = errors.New("outside the allowed file roots")
	// ErrFile: the file cannot be read as one regular file.
	ErrFile = errors.New("cannot read the file")
)

// resolveRoots makes each root absolute with its symlinks resolved, so
// that resolved paths can be compared with it.
func resolveRoots(roots []string) ([]string, error) {
	var out []string
	for _, r := range roots {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		abs, err := filepath.Abs(r)
		if err == nil {
			abs, err = filepath.EvalSymlinks(abs)
		}
		if err != nil {
			return nil, fmt.Errorf("file root %s: %w", r, errors.Unwrap(err))
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("file root %s: not a directory", r)
		}
		out = append(out, abs)
	}
	return out, nil
}

// Roots are the directories file:// URLs may read below, resolved.
func (f *Opener) Roots() []string { return f.roots }

// absDirs makes each of dirs absolute and clean; they need not exist.
func absDirs(dirs []string) ([]string, error) {
	var out []string
	for _, d := range dirs {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("denied directory %s: %w", d, err)
		}
		out = append(out, abs)
	}
	return out, nil
}

// resolvePartial is p with its symlinks resolved as far as they lead to
// anything: a missing rest is appended as written, and a dangling link is
// followed to where its target would be. It is where p is, or would be
// once created, in the terms the roots and resolved paths are written in.
func resolvePartial(p string) string {
	vol := filepath.VolumeName(p)
	sep := string(filepath.Separator)
	done := vol + sep
	rest := strings.Split(filepath.Clean(p)[len(vol):], sep)
	for links := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			done = filepath.Dir(done)
			continue
		}
		next := filepath.Join(done, c)
		fi, err := os.Lstat(next)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			done = next
			if err != nil {
				return filepath.Join(append([]string{done}, rest...)...)
			}
			continue
		}
		target, err := os.Readlink(next)
		if links++; err != nil || links > 255 {
			// A loop, or a link that cannot be read: taken as written.
			return filepath.Join(append([]string{next}, rest...)...)
		}
		if filepath.IsAbs(target) {
			tv := filepath.VolumeName(target)
			done, target = tv+sep, target[len(tv):]
		}
		rest = append(strings.Split(target, sep), rest...)
	}
	return done
}

// below reports whether p is dir or lies below it.
func below(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// denied reports whether the resolved path p lies in a denied directory,
// the directory resolved now, so that one reached through a symlink, or
// created or moved since start-up, is still recognised.
func (f *Opener) denied(p string) bool {
	for _, d := range f.deny {
		if below(p, d) || below(p, resolvePartial(d)) {
			return true
		}
	}
	return false
}

// RootsContaining lists the file roots that hold dir (or are it or lie
// below it): file:// URLs cannot read dir if it is a denied directory,
// but an operator may want to know the roots reach that far.
func (f *Opener) RootsContaining(dir string) []string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	d := resolvePartial(abs)
	var out []string
	for _, root := range f.roots {
		if below(d, root) || below(root, d) {
			out = append(out, root)
		}
	}
	return out
}

// within returns the root holding p and p relative to it.
func (f *Opener) within(p string) (root, rel string, ok bool) {
	for _, root := range f.roots {
		if below(p, root) {
			rel, _ := filepath.Rel(root, p)
			return root, rel, true
		}
	}
	return "", "", false
}

// existsInRoot reports whether dir's deepest existing ancestor (dir
// itself, if it exists), symlinks resolved, lies below a root and not in
// a denied directory.
func (f *Opener) existsInRoot(dir string) bool {
	for {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			_, _, ok := f.within(r)
			return ok && !f.denied(r)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false
		}
		dir = parent
	}
}

// FileURL is the file:// URL of a local path.
func FileURL(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // C:/x is file:///C:/x
	}
	return (&url.URL{Scheme: "file", Path: p}).String(), nil
}

// openFile opens a file:// URL's file: a regular file that lies below one
// of the roots once every symlink in its path is resolved. The file is
// then opened through an os.Root, which refuses to follow a link out of
// the root, so swapping a path component for a symlink after the check
// does not get around it either.
func (f *Opener) openFile(u *url.URL) (*Source, error) {
	if len(f.roots) == 0 {
		return nil, fmt.Errorf("%w: file:// URLs are off on this server (no file roots are set)", ErrOutsideRoots)
	}
	if u.Host != "" && !strings.EqualFold(u.Host, "localhost") {
		return nil, fmt.Errorf("%w: a file:// URL names no host: file:///path/to/file", ErrScheme)
	}
	name := u.Path
	if runtime.GOOS == "windows" && len(name) > 2 && name[0] == '/' && name[2] == ':' {
		name = name[1:] // /C:/x
	}
	name = filepath.FromSlash(name)
	if !filepath.IsAbs(name) {
		return nil, fmt.Errorf("%w: a file:// URL needs an absolute path: file:///path/to/file", ErrScheme)
	}
	name = filepath.Clean(name)

	// Outside the roots every answer is the same one, whether or not the
	// file exists: anything else would tell which files exist there. So is
	// every answer inside a denied directory.
	outside := fmt.Errorf("%w: %s", ErrOutsideRoots, name)
	denied := fmt.Errorf("%w: %s is in filestage's own data directory, which is never a source", ErrOutsideRoots, name)
	resolved, err := filepath.EvalSymlinks(name)
	if err != nil {
		// Only a path that would lie in a root, outside the denied
		// directories, and whose deepest existing directory does too,
		// may say what is wrong with it.
		switch would := resolvePartial(name); {
		case f.denied(would):
			return nil, denied
		case f.inRoots(would) && f.existsInRoot(filepath.Dir(name)):
			return nil, fileError(name, err)
		}
		return nil, outside
	}
	root, rel, inside := f.within(resolved)
	switch {
	case f.denied(resolved):
		return nil, denied
	case !inside:
		return nil, outside
	}

	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fileError(name, err)
	}
	defer r.Close()
	// Stat first: opening a device or a FIFO can block or have effects.
	if fi, err := r.Stat(rel); err != nil {
		return nil, fileError(name, err)
	} else if !fi.Mode().IsRegular() {
		return nil, notRegular(name, fi)
	}
	file, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fileError(name, err)
	}
	fi, err := file.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = notRegular(name, fi)
	}
	if err == nil {
		// A directory on the way swapped for a symlink since the check
		// stays inside the root (os.Root sees to that) but may lead into
		// a denied directory: judge where the file opened really is.
		if p, ok := openedPath(file); ok && f.denied(p) {
			err = denied
		} else if ok && !f.inRoots(p) {
			err = outside
		}
	}
	if err == nil && f.opts.MaxBytes > 0 && fi.Size() > f.opts.MaxBytes {
		err = fmt.Errorf("%w: %s is %d bytes, the cap is %d", ErrTooLarge, name, fi.Size(), f.opts.MaxBytes)
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	return &Source{Body: file, At: file, Size: fi.Size(), Name: SanitizeName(filepath.Base(name))}, nil
}

// inRoots reports whether the resolved path p lies below a root.
func (f *Opener) inRoots(p string) bool {
	_, _, ok := f.within(p)
	return ok
}

// openedPath is where an open file is, as the kernel knows it, where it
// says (Linux's /proc/self/fd).
func openedPath(file *os.File) (string, bool) {
	if runtime.GOOS != "linux" {
		return "", false
	}
	conn, err := file.SyscallConn()
	if err != nil {
		return "", false
	}
	var p string
	var rerr error
	if err := conn.Control(func(fd uintptr) {
		p, rerr = os.Readlink("/proc/self/fd/" + strconv.Itoa(int(fd)))
	}); err != nil || rerr != nil || !filepath.IsAbs(p) {
		return "", false
	}
	return p, true
}

func notRegular(name string, fi fs.FileInfo) error {
	what := "not a regular file (a device, pipe or socket)"
	if fi.IsDir() {
		what = "a directory; name one file in it"
	}
	return fmt.Errorf("%w: %s is %s", ErrFile, name, what)
}

// fileError says why a file could not be opened without repeating the
// operating system's wording (which names the path again).
func fileError(name string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s does not exist", ErrFile, name)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %s is not readable by filestage", ErrFile, name)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%w: %s: %v", ErrFile, name, err)
}
