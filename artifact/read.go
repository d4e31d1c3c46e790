package artifact

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"gocloud.dev/gcerrors"
)

// ErrCorrupt is wrapped by the error of a read whose bytes do not match
// the artifact's size or digest: the object was changed or damaged after
// it was written.
var ErrCorrupt = errors.New("artifact bytes do not match their digest")

// Open returns a reader of the artifact's bytes from the store of the
// task that runs in ctx (or, for an artifact outside it, from the store
// its URI names). The reader checks the size and the SHA-256 digest as it
// goes: its last Read returns an error wrapping [ErrCorrupt] instead of
// io.EOF when they do not match, so a reader that reads to the end never
// takes damaged bytes for good ones.
func (a Artifact) Open(ctx context.Context) (io.ReadCloser, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %w", a, err)
	}
	return a.open(ctx, sc.Store)
}

func (a Artifact) open(ctx context.Context, s *Store) (io.ReadCloser, error) {
	if err := a.readable(); err != nil {
		return nil, err
	}
	b, key, err := s.locate(ctx, a.URI)
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %w", a.URI, err)
	}
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, a.gone(err)
		}
		return nil, fmt.Errorf("artifact %s: %w", a.URI, err)
	}
	return newVerifier(ctx, r, a), nil
}

func (a Artifact) readable() error {
	switch {
	case a.Pending():
		return fmt.Errorf("artifact %s: not uploaded yet (a local artifact is uploaded when its task returns)", a)
	case a.URI == "":
		return errors.New("artifact has no URI: the field was never set (is the producing step's output field filled?)")
	case !strings.HasPrefix(a.Digest, "sha256:"):
		return fmt.Errorf("artifact %s: no sha256 digest to check its bytes against", a.URI)
	}
	return nil
}

// verifier checks size and digest while it reads. The bytes are hashed
// on a hashPipe's goroutine, a buffer of 1 MiB behind the reads. Its
// WriteTo, which io.Copy uses, reads straight into the pipe's buffers;
// Read copies what it returns into them.
type verifier struct {
	r   io.ReadCloser
	hp  *hashPipe
	buf []byte // bytes read, not yet handed to hp
	n   int64
	a   Artifact
	err error
}

// newVerifier checks r against a; ctx bounds the hashing goroutine.
func newVerifier(ctx context.Context, r io.ReadCloser, a Artifact) *verifier {
	return &verifier{r: r, hp: newHashPipe(ctx), a: a}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	for q := p[:n]; len(q) > 0 && v.err == nil; {
		if v.buf == nil && !v.next() {
			break
		}
		c := copy(v.buf[len(v.buf):cap(v.buf)], q)
		v.buf = v.buf[:len(v.buf)+c]
		q = q[c:]
		v.handFull()
	}
	return n, v.account(n, err)
}

// WriteTo writes the artifact's bytes to w, a buffer of 1 MiB at a time,
// each hashed while the next is read. It returns io.EOF's replacement,
// an error wrapping [ErrCorrupt], when the bytes do not match.
func (v *verifier) WriteTo(w io.Writer) (int64, error) {
	var written int64
	for v.err == nil {
		if v.buf == nil && !v.next() {
			break
		}
		start := len(v.buf)
		m, rerr := v.r.Read(v.buf[start:cap(v.buf)])
		v.buf = v.buf[:start+m]
		chunk := v.buf[start : start+m]
		v.handFull() // w may still read chunk: hp does not reuse it before our next get
		if m > 0 {
			k, werr := w.Write(chunk)
			written += int64(k)
			if werr == nil && k < m {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				v.fail(werr)
				return written, werr
			}
		}
		if err := v.account(m, rerr); err == io.EOF {
			return written, nil
		}
	}
	if v.err == io.EOF {
		return written, nil
	}
	return written, v.err
}

// next takes an empty buffer from the hash pipe; false means v failed.
func (v *verifier) next() bool {
	b, err := v.hp.get()
	if err != nil {
		v.fail(fmt.Errorf("artifact %s: %w", v.a.URI, err))
		return false
	}
	v.buf = b
	return true
}

// handFull hands v's buffer to the hash pipe once it is full.
func (v *verifier) handFull() {
	if len(v.buf) == cap(v.buf) {
		v.hp.hand(v.buf)
		v.buf = nil
	}
}

// account counts n more bytes read, whose read returned err, and returns
// the error of the read: at io.EOF, nil or an error wrapping ErrCorrupt.
func (v *verifier) account(n int, err error) error {
	if v.err != nil {
		return v.err
	}
	v.n += int64(n)
	if v.n > v.a.Size {
		return v.fail(v.corrupt(fmt.Sprintf("it has more than the %d bytes written", v.a.Size)))
	}
	if err == io.EOF {
		got, serr := v.hp.sum(v.buf)
		v.buf = nil
		if serr != nil {
			return v.fail(fmt.Errorf("artifact %s: %w", v.a.URI, serr))
		}
		if v.n != v.a.Size || got != v.a.Digest {
			return v.fail(v.corrupt(fmt.Sprintf("read %d bytes hashing to %s; it was written as %d bytes hashing to %s", v.n, got, v.a.Size, v.a.Digest)))
		}
		v.err = io.EOF
		return io.EOF
	}
	if err != nil {
		return v.fail(err)
	}
	return nil
}

// fail records err as the error of every later read, and stops the hash
// pipe.
func (v *verifier) fail(err error) error {
	v.err = err
	v.hp.stop()
	v.buf = nil
	return err
}

func (v *verifier) corrupt(what string) error {
	return fmt.Errorf("artifact %s (from step %q of run %s): %s; the object was changed or damaged after it was written; run the step again to produce it: %w",
		v.a.URI, v.a.Producer.Step, v.a.Producer.Run, what, ErrCorrupt)
}

func (v *verifier) Close() error {
	v.hp.stop()
	v.buf = nil
	return v.r.Close()
}

// ReadAll returns the artifact's bytes, checked against the digest.
func (a Artifact) ReadAll(ctx context.Context) ([]byte, error) {
	r, err := a.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// ReadJSON decodes the artifact's bytes, checked against the digest, into v.
func (a Artifact) ReadJSON(ctx context.Context, v any) error {
	b, err := a.ReadAll(ctx)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("artifact %s: %w", a.URI, err)
	}
	return nil
}

// Path returns a local path holding the artifact: a file, or for a [Dir]
// a directory. It is downloaded on the first call, checked against the
// digest, and shared by digest between the tasks of one machine (see
// [Scope].Dir); nothing partial is ever at the returned path. Treat it as
// read-only.
func (a Artifact) Path(ctx context.Context) (string, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return "", fmt.Errorf("artifact %s: %w", a, err)
	}
	if err := a.readable(); err != nil {
		return "", err
	}
	hexd := strings.TrimPrefix(a.Digest, "sha256:")
	dir := filepath.Join(sc.downloads(), "sha256")
	final := filepath.Join(dir, hexd)
	if a.Kind == KindDir {
		final += ".d"
	}
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("artifact %s: %w", a.URI, err)
	}
	tmp, err := os.MkdirTemp(dir, ".partial-")
	if err != nil {
		return "", fmt.Errorf("artifact %s: %w", a.URI, err)
	}
	defer os.RemoveAll(tmp)
	got := filepath.Join(tmp, "a")
	if src, ok := localFile(a); ok {
		if err := a.copyLocal(ctx, src, got); err != nil {
			return "", err
		}
	} else {
		var r io.ReadCloser
		if r, err = a.open(ctx, sc.Store); err != nil {
			return "", err
		}
		defer r.Close()
		if a.Kind == KindDir {
			err = untar(r, got)
		} else {
			err = copyFile(r, got)
		}
	}
	if err != nil {
		return "", fmt.Errorf("artifact %s: download: %w", a.URI, err)
	}
	if err := os.Rename(got, final); err != nil {
		if _, serr := os.Stat(final); serr == nil {
			return final, nil // another task downloaded it first
		}
		return "", fmt.Errorf("artifact %s: %w", a.URI, err)
	}
	return final, nil
}

func copyFile(r io.Reader, name string) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// untar unpacks the tar stream r into the new directory dir. Names that
// would leave dir are an error. The whole stream is read, so the digest
// is checked before the directory is used.
func untar(r io.Reader, dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := filepath.FromSlash(strings.TrimSuffix(h.Name, "/"))
		if !filepath.IsLocal(name) {
			return fmt.Errorf("tar entry %q leaves the directory", h.Name)
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, os.FileMode(h.Mode)&0o755|0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		default:
			return fmt.Errorf("tar entry %q: unsupported type %q", h.Name, h.Typeflag)
		}
	}
	// Drain to the end so the digest is checked.
	_, err := io.Copy(io.Discard, r)
	return err
}

// localFile returns the path of a, a file (not a Dir) in a file://
// store, on this machine.
func localFile(a Artifact) (string, bool) {
	if a.Kind == KindDir {
		return "", false
	}
	u, err := url.Parse(a.URI)
	if err != nil || u.Scheme != "file" || u.Host != "" || u.RawQuery != "" || !filepath.IsAbs(u.Path) {
		return "", false
	}
	return filepath.FromSlash(u.Path), true
}

// copyLocal copies a's file src to dst, a new file, and checks the copy
// against a's size and digest: what is checked is what Path returns. The
// copy is the kernel's (copy_file_range, or a reflink where the file
// system has them); the check reads the copy back through a verifier,
// which hashes each 1 MiB while it reads the next. A copy in user space
// through the verifier, writing what it hashes, overlaps the hashing with
// the whole copy instead, but did not measure faster (1 GiB on a loaded
// two-core machine: 4.8-8.4 s, against 5.7 s this way), and costs the
// kernel copy's saving.
func (a Artifact) copyLocal(ctx context.Context, src, dst string) error {
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return a.gone(err)
	}
	if err != nil {
		return fmt.Errorf("artifact %s: %w", a.URI, err)
	}
	defer in.Close()
	if err := copyFile(in, dst); err != nil {
		return fmt.Errorf("artifact %s: download: %w", a.URI, err)
	}
	f, err := os.Open(dst)
	if err != nil {
		return fmt.Errorf("artifact %s: download: %w", a.URI, err)
	}
	v := newVerifier(ctx, f, a)
	defer v.Close()
	_, err = io.Copy(io.Discard, v) // its last read checks the digest
	return err
}

// gone is the error of a read of a, whose object is not in the store
// (err says so).
func (a Artifact) gone(err error) error {
	return fmt.Errorf("artifact %s is gone from the store (deleted, or its run's artifacts were removed); run step %q of run %s again to produce it: %w", a.URI, a.Producer.Step, a.Producer.Run, err)
}
