package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Records are small documents a store keeps outside any run, for tools
// built on it — a model registry, say — that need a shared place that
// works wherever the artifacts are, with no further service. They live
// under <root>/_records/<key>; no pipeline can be named "_records", so
// they never meet a run's artifacts. A record is written whole or not at
// all, like an artifact.

// ErrRecordExists is returned by [Store.CreateRecord] when the key holds
// a record already.
var ErrRecordExists = errors.New("record exists")

// ErrNoRecord is returned by [Store.ReadRecord] when the key holds none.
var ErrNoRecord = errors.New("no such record")

const recordsDir = "_records/"

// createLocks makes CreateRecord atomic on stores whose driver cannot
// write conditionally (mem://, which lives in this process anyway).
var createLocks sync.Map // store root -> *sync.Mutex

func checkRecordKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || path.Clean(key) != key || strings.Contains(key, "..") {
		return fmt.Errorf("%q is not a record key: use slash-separated names, no empty, \".\" or \"..\" parts", key)
	}
	return nil
}

// WriteRecord writes data as the record at key, replacing any.
func (s *Store) WriteRecord(ctx context.Context, key string, data []byte) error {
	return s.writeRecord(ctx, key, data, false)
}

// CreateRecord writes data as the record at key unless the key holds one
// already, in which case it returns an error wrapping [ErrRecordExists]:
// of two writers racing for a key, exactly one wins (a conditional
// write on S3, GCS, Azure and file:// stores).
func (s *Store) CreateRecord(ctx context.Context, key string, data []byte) error {
	return s.writeRecord(ctx, key, data, true)
}

func (s *Store) writeRecord(ctx context.Context, key string, data []byte, create bool) error {
	if err := checkRecordKey(key); err != nil {
		return fmt.Errorf("artifact store %s: %w", s.root, err)
	}
	b, err := s.open(ctx)
	if err != nil {
		return err
	}
	full := s.prefix + recordsDir + key
	if create && s.scheme == "mem" {
		mu, _ := createLocks.LoadOrStore(s.root, &sync.Mutex{})
		mu.(*sync.Mutex).Lock()
		defer mu.(*sync.Mutex).Unlock()
		if ok, err := b.Exists(ctx, full); err != nil {
			return fmt.Errorf("artifact store %s: record %s: %w", s.root, key, err)
		} else if ok {
			return fmt.Errorf("artifact store %s: record %s: %w", s.root, key, ErrRecordExists)
		}
	}
	if create && s.scheme == "file" {
		// fileblob checks IfNotExist before it renames its temporary
		// file into place, so two creators can both pass: a hard link
		// is atomic.
		return s.createFileRecord(key, full, data)
	}
	opts := &blob.WriterOptions{ContentType: "application/json", IfNotExist: create && s.scheme != "mem"}
	if err := b.WriteAll(ctx, full, data, opts); err != nil {
		if create && gcerrors.Code(err) == gcerrors.FailedPrecondition {
			return fmt.Errorf("artifact store %s: record %s: %w", s.root, key, ErrRecordExists)
		}
		return fmt.Errorf("artifact store %s: write record %s: %w", s.root, key, err)
	}
	return nil
}

// ReadRecord returns the record at key, or an error wrapping
// [ErrNoRecord].
func (s *Store) ReadRecord(ctx context.Context, key string) ([]byte, error) {
	if err := checkRecordKey(key); err != nil {
		return nil, fmt.Errorf("artifact store %s: %w", s.root, err)
	}
	b, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	data, err := b.ReadAll(ctx, s.prefix+recordsDir+key)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("artifact store %s: record %s: %w", s.root, key, ErrNoRecord)
		}
		return nil, fmt.Errorf("artifact store %s: read record %s: %w", s.root, key, err)
	}
	return data, nil
}

// Records returns the keys of the records under prefix (a key prefix
// ending in "/", or "" for all), sorted.
func (s *Store) Records(ctx context.Context, prefix string) ([]string, error) {
	if prefix != "" && (!strings.HasSuffix(prefix, "/") || checkRecordKey(strings.TrimSuffix(prefix, "/")) != nil) {
		return nil, fmt.Errorf("artifact store %s: %q is not a record prefix: use slash-separated names ending in \"/\"", s.root, prefix)
	}
	b, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	base := s.prefix + recordsDir
	var keys []string
	for try := 1; ; try++ {
		keys, err = listKeys(ctx, b, base, prefix)
		// A file:// store's listing stats each file it reads, and a
		// writer's temporary file can vanish in between (renamed into
		// place): list again.
		if err == nil || gcerrors.Code(err) != gcerrors.NotFound || try == 5 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("artifact store %s: list records %s: %w", s.root, prefix, err)
	}
	slices.Sort(keys)
	return keys, nil
}

func listKeys(ctx context.Context, b *blob.Bucket, base, prefix string) ([]string, error) {
	it := b.List(&blob.ListOptions{Prefix: base + prefix})
	var keys []string
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return keys, nil
		}
		if err != nil {
			return nil, err
		}
		if !obj.IsDir && !strings.HasSuffix(obj.Key, ".tmp") {
			keys = append(keys, strings.TrimPrefix(obj.Key, base))
		}
	}
}

// createFileRecord creates the record at key (full, its key in the
// bucket) of a file:// store: written to a temporary file, then linked
// to its name, which fails when the name exists.
func (s *Store) createFileRecord(key, full string, data []byte) error {
	dir, _ := s.LocalDir()
	dst := filepath.Join(dir, filepath.FromSlash(full))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("artifact store %s: write record %s: %w", s.root, key, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".record-*.tmp")
	if err != nil {
		return fmt.Errorf("artifact store %s: write record %s: %w", s.root, key, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), dst)
	}
	switch {
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("artifact store %s: record %s: %w", s.root, key, ErrRecordExists)
	case err != nil:
		return fmt.Errorf("artifact store %s: write record %s: %w", s.root, key, err)
	}
	return nil
}
