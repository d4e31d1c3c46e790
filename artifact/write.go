package artifact

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gocloud.dev/blob"
)

// An Option sets a property of an artifact being written.
type Option func(*Artifact)

// MediaType sets the artifact's media type, e.g. "application/json",
// "text/csv", "application/x-parquet".
func MediaType(t string) Option { return func(a *Artifact) { a.MediaType = t } }

// Meta adds one metadata entry: a framework, a metric, a schema version.
func Meta(key, value string) Option {
	return func(a *Artifact) {
		if a.Metadata == nil {
			a.Metadata = map[string]string{}
		}
		a.Metadata[key] = value
	}
}

// Writer writes one artifact of the running task. Its bytes become
// visible in the store, as a whole, only when Close returns nil: a reader
// never sees half an artifact, and a failed or retried attempt never
// leaves a torn one. Abort (or a canceled context) discards them.
//
// A Writer gathers the bytes into buffers of 1 MiB: many small writes
// (an encoder's) cost one store write per MiB, and each buffer is hashed
// on another goroutine while the next one fills (see hashPipe). It
// implements io.ReaderFrom, so that io.Copy from a file reads straight
// into those buffers.
type Writer struct {
	w      *blob.Writer
	cancel context.CancelFunc
	hp     *hashPipe
	buf    []byte // bytes not yet written to w; nil before the first write
	n      int64
	a      Artifact
	done   bool
	err    error
}

// NewWriter starts writing the artifact name of the task that runs in
// ctx, at <root>/<pipeline>/<run>/<step>[/<instance>]/<name>. Most tasks
// use [Write], [WriteFile], [WriteDir] or [Local] instead.
func NewWriter(ctx context.Context, name string, opts ...Option) (*Writer, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, fmt.Errorf("artifact %q: %w", name, err)
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	return newWriter(ctx, sc.Store, sc.Producer, name, opts...)
}

// newWriter writes name, which the caller checked.
func newWriter(ctx context.Context, s *Store, p Producer, name string, opts ...Option) (*Writer, error) {
	a := Artifact{Producer: p}
	for _, o := range opts {
		o(&a)
	}
	if a.MediaType == "" {
		a.MediaType = "application/octet-stream"
	}
	key := s.key(p, name)
	a.URI = s.uri(key)
	b, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	bw, err := b.NewWriter(wctx, key, &blob.WriterOptions{
		ContentType:                 a.MediaType,
		DisableContentTypeDetection: true,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("artifact %s: %w", a.URI, err)
	}
	return &Writer{w: bw, cancel: cancel, hp: newHashPipe(wctx), a: a}, nil
}

// Write writes p to the artifact.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		if w.buf == nil {
			if err := w.next(); err != nil {
				return n, err
			}
		}
		c := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+c]
		p = p[c:]
		n += c
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// ReadFrom writes what r holds to the artifact, reading straight into
// the Writer's buffers. It returns the number of bytes read from r.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	var n int64
	for {
		if w.buf == nil {
			if err := w.next(); err != nil {
				return n, err
			}
		}
		m, rerr := r.Read(w.buf[len(w.buf):cap(w.buf)])
		w.buf = w.buf[:len(w.buf)+m]
		n += int64(m)
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

func (w *Writer) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return fmt.Errorf("artifact %s: write after Close", w.a.URI)
	}
	return nil
}

// next takes an empty buffer from the hash pipe.
func (w *Writer) next() error {
	b, err := w.hp.get()
	if err != nil {
		w.err = fmt.Errorf("artifact %s: %w", w.a.URI, err)
		return w.err
	}
	w.buf = b
	return nil
}

// flush hands the full buffer to the hash pipe and, while it is hashed,
// writes it to the store.
func (w *Writer) flush() error {
	b := w.buf
	w.buf = nil
	w.hp.hand(b)
	return w.put(b)
}

// put writes b to the store.
func (w *Writer) put(b []byte) error {
	m, err := w.w.Write(b)
	w.n += int64(m)
	if err != nil {
		w.err = fmt.Errorf("artifact %s: %w", w.a.URI, err)
	}
	return w.err
}

// Close completes the artifact. After it returns nil, [Writer.Artifact]
// describes it.
func (w *Writer) Close() error {
	if w.done {
		return w.err
	}
	w.done = true
	defer w.cancel()
	if w.err == nil && len(w.buf) > 0 {
		w.put(w.buf)
	}
	if w.err != nil {
		w.hp.stop()
		w.cancel()
		w.w.Close()
		return w.err
	}
	digest, err := w.hp.sum(w.buf)
	w.buf = nil
	if err != nil {
		w.err = fmt.Errorf("artifact %s: %w", w.a.URI, err)
		w.cancel()
		w.w.Close()
		return w.err
	}
	if err := w.w.Close(); err != nil {
		w.err = fmt.Errorf("artifact %s: %w", w.a.URI, err)
		return w.err
	}
	w.a.Digest = digest
	w.a.Size = w.n
	w.a.Created = time.Now().UTC().Truncate(time.Millisecond)
	return nil
}

// Abort discards what was written; an earlier version of the artifact,
// if any, stays as it was.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.err = fmt.Errorf("artifact %s: aborted", w.a.URI)
	w.hp.stop()
	w.buf = nil
	w.cancel()
	w.w.Close()
}

// Artifact describes the written artifact; it is complete once Close
// returned nil.
func (w *Writer) Artifact() Artifact { return w.a.clone() }

// Write writes the artifact name of the task that runs in ctx with fn,
// which gets a writer of the artifact's bytes. An error from fn, or a
// panic, discards the bytes.
//
//	out.Train, err = artifact.Write[artifact.Dataset](ctx, "train", func(w io.Writer) error {
//		return csv.NewWriter(w).WriteAll(rows)
//	}, artifact.MediaType("text/csv"))
func Write[T Typed](ctx context.Context, name string, fn func(w io.Writer) error, opts ...Option) (T, error) {
	var zero T
	w, err := NewWriter(ctx, name, opts...)
	if err != nil {
		return zero, err
	}
	ok := false
	defer func() {
		if !ok {
			w.Abort()
		}
	}()
	if err := fn(w); err != nil {
		return zero, fmt.Errorf("artifact %s: %w", w.a.URI, err)
	}
	ok = true
	if err := w.Close(); err != nil {
		return zero, err
	}
	return typed[T](w.Artifact()), nil
}

// WriteJSON writes v as JSON (media type application/json) as the
// artifact name.
func WriteJSON[T Typed](ctx context.Context, name string, v any, opts ...Option) (T, error) {
	opts = append([]Option{MediaType("application/json")}, opts...)
	return Write[T](ctx, name, func(w io.Writer) error { return json.NewEncoder(w).Encode(v) }, opts...)
}

// WriteFile uploads the local file path as the artifact name.
func WriteFile[T Typed](ctx context.Context, name, path string, opts ...Option) (T, error) {
	var zero T
	if kindOf[T]() == KindDir {
		d, err := WriteDir(ctx, name, path, opts...)
		return T(struct{ Artifact }{d.Artifact}), err
	}
	f, err := os.Open(path)
	if err != nil {
		return zero, fmt.Errorf("artifact %q: %w", name, err)
	}
	defer f.Close()
	return Write[T](ctx, name, func(w io.Writer) error {
		_, err := w.(*Writer).ReadFrom(f) // 1 MiB reads, each hashed while the next is read
		return err
	}, opts...)
}

// WriteDir uploads the directory tree dir as the artifact name, one tar
// archive (media type application/x-tar) holding its regular files,
// directories and symbolic links in name order, with modes but no owners
// or times, so the same tree always has the same digest.
func WriteDir(ctx context.Context, name, dir string, opts ...Option) (Dir, error) {
	opts = append([]Option{MediaType("application/x-tar")}, opts...)
	st, err := os.Stat(dir)
	if err != nil {
		return Dir{}, fmt.Errorf("artifact %q: %w", name, err)
	}
	if !st.IsDir() {
		return Dir{}, fmt.Errorf("artifact %q: %s is not a directory; use WriteFile for a file", name, dir)
	}
	return Write[Dir](ctx, name, func(w io.Writer) error { return writeTar(w, dir) }, opts...)
}

func writeTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		} else if !info.Mode().IsRegular() && !info.IsDir() {
			return fmt.Errorf("%s: not a regular file, directory or symbolic link", p)
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			h.Name += "/"
		}
		h.ModTime, h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}, time.Time{}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		h.Format = tar.FormatPAX
		h.PAXRecords = nil
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// Local returns an artifact made of the local file (or, for [Dir], the
// directory) at path, to be uploaded when the task returns: put it into
// a field of the task's output, and the SDK uploads it under the field's
// JSON name before the output leaves the task.
//
//	model.Save("/tmp/model.onnx")
//	return TrainOut{Model: artifact.Local[artifact.Model]("/tmp/model.onnx", artifact.Meta("framework", "onnx"))}, nil
func Local[T Typed](path string, opts ...Option) T {
	a := Artifact{local: path}
	for _, o := range opts {
		o(&a)
	}
	return typed[T](a)
}

// upload writes the pending artifact a as name.
func upload(ctx context.Context, name string, a Artifact) (Artifact, error) {
	var opts []Option
	if a.MediaType != "" {
		opts = append(opts, MediaType(a.MediaType))
	}
	if len(a.Metadata) > 0 {
		opts = append(opts, func(b *Artifact) { b.Metadata = maps.Clone(a.Metadata) })
	}
	var (
		got Artifact
		err error
	)
	if a.Kind == KindDir {
		var d Dir
		d, err = WriteDir(ctx, name, a.local, opts...)
		got = d.Artifact
	} else {
		var f File
		f, err = WriteFile[File](ctx, name, a.local, opts...)
		got = f.Artifact
	}
	if err != nil {
		return Artifact{}, err
	}
	got.Kind = a.Kind
	return got, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
