package artifact_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluice-ml/sluice/artifact"
)

// mib is the size of the buffers the SDK hashes on a goroutine of its
// own; the sizes below sit around its multiples.
const mib = 1 << 20

// pattern returns n bytes that differ from one MiB to the next, so that
// a buffer hashed twice or skipped changes the digest.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/mib)
	}
	return b
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// onlyWriter hides a writer's ReadFrom; onlyReader a reader's WriteTo.
type (
	onlyWriter struct{ io.Writer }
	onlyReader struct{ io.Reader }
)

// TestDigestsAroundBufferSizes writes and reads back artifacts whose
// sizes sit at the edges of the hashing buffers, by every way in and out:
// the digest is SHA-256 of the bytes, whatever the size, the write
// pattern and the read pattern.
func TestDigestsAroundBufferSizes(t *testing.T) {
	ctx, _, _ := scope(t, "sizes", nil)
	writes := map[string]func(w io.Writer, data []byte) error{
		"one Write": func(w io.Writer, data []byte) error {
			_, err := w.Write(data)
			return err
		},
		"100-byte Writes": func(w io.Writer, data []byte) error {
			for len(data) > 0 {
				n := min(100, len(data))
				if _, err := w.Write(data[:n]); err != nil {
					return err
				}
				data = data[n:]
			}
			return nil
		},
		"ReadFrom, short reads": func(w io.Writer, data []byte) error {
			_, err := w.(io.ReaderFrom).ReadFrom(iotest.HalfReader(bytes.NewReader(data)))
			return err
		},
	}
	reads := map[string]func(r io.Reader) ([]byte, error){
		"WriteTo": func(r io.Reader) ([]byte, error) {
			var buf bytes.Buffer
			_, err := io.Copy(onlyWriter{&buf}, r)
			return buf.Bytes(), err
		},
		"4 KiB Reads": func(r io.Reader) ([]byte, error) {
			var buf bytes.Buffer
			_, err := io.CopyBuffer(onlyWriter{&buf}, onlyReader{r}, make([]byte, 4096))
			return buf.Bytes(), err
		},
	}
	for _, size := range []int{0, 1, mib - 1, mib, mib + 1, 3*mib + 7, 5 * mib} {
		data := pattern(size)
		want := digestOf(data)
		for wname, write := range writes {
			name := fmt.Sprintf("%d bytes/%s", size, wname)
			t.Run(name, func(t *testing.T) {
				a, err := artifact.Write[artifact.File](ctx, fmt.Sprintf("a-%d-%d", size, len(wname)), func(w io.Writer) error { return write(w, data) })
				require.NoError(t, err)
				assert.Equal(t, want, a.Digest)
				assert.Equal(t, int64(size), a.Size)
				for rname, read := range reads {
					r, err := a.Open(ctx)
					require.NoError(t, err)
					got, err := read(r)
					require.NoError(t, err, rname)
					require.NoError(t, r.Close())
					assert.True(t, bytes.Equal(data, got), "%s: the bytes read are the bytes written", rname)
				}
				p, err := a.Path(ctx)
				require.NoError(t, err)
				got, err := os.ReadFile(p)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(data, got), "Path: the bytes downloaded are the bytes written")
				goleak.VerifyNone(t)
			})
		}
	}
}

// TestConcurrentArtifacts writes and reads several large artifacts at
// once: each has its own hashing goroutine and buffers.
func TestConcurrentArtifacts(t *testing.T) {
	ctx, _, _ := scope(t, "many", nil)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			data := pattern(2*mib + 1000*i)
			data[0] = byte(i)
			a, err := artifact.Write[artifact.Dataset](ctx, fmt.Sprintf("part-%d", i), func(w io.Writer) error {
				_, err := w.(io.ReaderFrom).ReadFrom(bytes.NewReader(data))
				return err
			})
			if err == nil && a.Digest != digestOf(data) {
				err = fmt.Errorf("part %d: digest %s, want %s", i, a.Digest, digestOf(data))
			}
			if err == nil {
				var got []byte
				if got, err = a.ReadAll(ctx); err == nil && !bytes.Equal(got, data) {
					err = fmt.Errorf("part %d: read other bytes", i)
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	goleak.VerifyNone(t)
}

// TestAbortMidStream aborts, fails or cancels writes after several
// buffers went to the hashing goroutine: nothing is left in the store,
// and the goroutine is gone.
func TestAbortMidStream(t *testing.T) {
	data := pattern(3*mib + 5)
	boom := errors.New("boom")
	cases := map[string]func(t *testing.T, ctx context.Context){
		"Abort": func(t *testing.T, ctx context.Context) {
			w, err := artifact.NewWriter(ctx, "x")
			require.NoError(t, err)
			_, err = w.Write(data)
			require.NoError(t, err)
			w.Abort()
			assert.Error(t, w.Close(), "an aborted writer does not close")
		},
		"error from the task's writer func": func(t *testing.T, ctx context.Context) {
			_, err := artifact.Write[artifact.File](ctx, "x", func(w io.Writer) error {
				if _, err := w.Write(data); err != nil {
					return err
				}
				return boom
			})
			require.ErrorIs(t, err, boom)
		},
		"error reading the source": func(t *testing.T, ctx context.Context) {
			_, err := artifact.Write[artifact.File](ctx, "x", func(w io.Writer) error {
				_, err := io.Copy(w, io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom)))
				return err
			})
			require.ErrorIs(t, err, boom)
		},
		"context canceled, writer never closed": func(t *testing.T, ctx context.Context) {
			wctx, cancel := context.WithCancel(ctx)
			w, err := artifact.NewWriter(wctx, "x")
			require.NoError(t, err)
			_, err = w.Write(data)
			require.NoError(t, err)
			cancel()
			goleak.VerifyNone(t) // the context ends the goroutine
			_, err = w.Write(data)
			assert.Error(t, err, "writing on after the context ended")
			require.Error(t, w.Close())
		},
	}
	for name, run := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, s, _ := scope(t, "prep", nil)
			run(t, ctx)
			objs, err := s.List(ctx, "pipe", "run-1")
			require.NoError(t, err)
			assert.Empty(t, objs, "nothing is left in the store")
			goleak.VerifyNone(t)
		})
	}
}

// TestReaderClosedMidStream stops reading a large artifact half way: Close
// ends the hashing goroutine.
func TestReaderClosedMidStream(t *testing.T) {
	ctx, _, _ := scope(t, "prep", nil)
	data := pattern(4 * mib)
	a, err := artifact.Write[artifact.File](ctx, "x", func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	require.NoError(t, err)
	r, err := a.Open(ctx)
	require.NoError(t, err)
	_, err = io.CopyN(io.Discard, r, 2*mib+3)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	goleak.VerifyNone(t)
}

// TestLargeCorruptedObject damages, shortens and lengthens a 3 MiB
// object: every way of reading it is an error wrapping ErrCorrupt, Path
// leaves nothing behind, and no goroutine is left.
func TestLargeCorruptedObject(t *testing.T) {
	data := pattern(3*mib + 11)
	damage := map[string]func([]byte) []byte{
		"a byte changed in the middle": func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
		"a byte changed at the end":    func(b []byte) []byte { b[len(b)-1] ^= 1; return b },
		"shortened by a byte":          func(b []byte) []byte { return b[:len(b)-1] },
		"lengthened by a MiB":          func(b []byte) []byte { return append(b, pattern(mib)...) },
	}
	for name, change := range damage {
		t.Run(name, func(t *testing.T) {
			ctx, _, dir := scope(t, "prep", nil)
			a, err := artifact.Write[artifact.Dataset](ctx, "rows", func(w io.Writer) error {
				_, err := w.Write(data)
				return err
			})
			require.NoError(t, err)
			obj := filepath.Join(dir, "pipe/run-1/prep/rows")
			require.NoError(t, os.WriteFile(obj, change(bytes.Clone(data)), 0o644))

			_, err = a.ReadAll(ctx)
			require.ErrorIs(t, err, artifact.ErrCorrupt, "Read")
			r, err := a.Open(ctx)
			require.NoError(t, err)
			_, err = io.Copy(io.Discard, r)
			require.ErrorIs(t, err, artifact.ErrCorrupt, "WriteTo")
			require.NoError(t, r.Close())

			_, err = a.Path(ctx)
			require.ErrorIs(t, err, artifact.ErrCorrupt, "Path")
			assert.Contains(t, err.Error(), `step "prep"`)
			entries, _ := os.ReadDir(filepath.Join(filepath.Dir(dir), "downloads", "sha256"))
			assert.Empty(t, entries, "nothing half-written left behind")
			goleak.VerifyNone(t)
		})
	}
}

// TestWriteAfterClose is an error that names the artifact, also when the
// bytes went through ReadFrom.
func TestWriteAfterClose(t *testing.T) {
	ctx, _, _ := scope(t, "prep", nil)
	w, err := artifact.NewWriter(ctx, "x")
	require.NoError(t, err)
	_, err = w.ReadFrom(strings.NewReader("abc"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	assert.Equal(t, digestOf([]byte("abc")), w.Artifact().Digest)
	_, err = w.Write([]byte("d"))
	require.ErrorContains(t, err, "write after Close")
	_, err = w.ReadFrom(strings.NewReader("d"))
	require.ErrorContains(t, err, "write after Close")
}
