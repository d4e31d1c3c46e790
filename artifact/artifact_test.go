package artifact_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
)

// scope returns a task context writing into a new file store.
func scope(t *testing.T, step string, instance *int) (context.Context, *artifact.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := artifact.Open(t.Context(), "file://"+filepath.Join(dir, "store"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ctx := artifact.NewContext(t.Context(), artifact.Scope{
		Store:    s,
		Producer: artifact.Producer{Pipeline: "pipe", Run: "run-1", Step: step, Instance: instance, Attempt: 1},
		Dir:      filepath.Join(dir, "downloads"),
	})
	return ctx, s, filepath.Join(dir, "store")
}

func TestWriteRead(t *testing.T) {
	i := 3
	ctx, _, dir := scope(t, "train", &i)
	m, err := artifact.Write[artifact.Model](ctx, "model", func(w io.Writer) error {
		_, err := io.WriteString(w, "weights")
		return err
	}, artifact.MediaType("text/plain"), artifact.Meta("framework", "go"))
	require.NoError(t, err)

	assert.Equal(t, artifact.KindModel, m.Kind)
	assert.Equal(t, "file://"+dir+"/pipe/run-1/train/3/model", m.URI, "the documented layout")
	assert.Equal(t, int64(7), m.Size)
	assert.Equal(t, "sha256:9a129038d9a00aed0cf6a7ea059ca50a813449061ab87848cf1a13eafdf33b2c", m.Digest)
	assert.Equal(t, "text/plain", m.MediaType)
	assert.Equal(t, map[string]string{"framework": "go"}, m.Metadata)
	assert.Equal(t, "train", m.Producer.Step)
	assert.False(t, m.Created.IsZero())

	b, err := m.ReadAll(ctx)
	require.NoError(t, err)
	assert.Equal(t, "weights", string(b))

	// In-band form: the kind comes from the type, bytes never travel.
	j, err := json.Marshal(struct{ M artifact.Model }{m})
	require.NoError(t, err)
	assert.NotContains(t, string(j), "weights")
	var back struct{ M artifact.Model }
	require.NoError(t, json.Unmarshal(j, &back))
	assert.Equal(t, m.Digest, back.M.Digest)
	assert.Equal(t, artifact.KindModel, back.M.Kind)

	p, err := back.M.Path(ctx)
	require.NoError(t, err)
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "weights", string(got))
}

func TestCorruptedObjectIsAnError(t *testing.T) {
	ctx, _, dir := scope(t, "prep", nil)
	d, err := artifact.WriteJSON[artifact.Dataset](ctx, "rows", []int{1, 2, 3})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pipe/run-1/prep/rows"), []byte("[1,2,4]\n"), 0o644))

	_, err = d.ReadAll(ctx)
	require.ErrorIs(t, err, artifact.ErrCorrupt)
	assert.Contains(t, err.Error(), d.URI)
	assert.Contains(t, err.Error(), `step "prep"`)
	assert.Contains(t, err.Error(), "run the step again")

	_, err = d.Path(ctx)
	require.ErrorIs(t, err, artifact.ErrCorrupt)
	entries, _ := os.ReadDir(filepath.Join(filepath.Dir(dir), "downloads", "sha256"))
	assert.Empty(t, entries, "nothing half-written left behind")

	require.NoError(t, os.Remove(filepath.Join(dir, "pipe/run-1/prep/rows")))
	_, err = d.ReadAll(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is gone from the store")
	_, err = d.Path(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is gone from the store")
}

func TestFailedWriteKeepsThePreviousVersion(t *testing.T) {
	ctx, s, _ := scope(t, "prep", nil)
	first, err := artifact.WriteJSON[artifact.File](ctx, "f", "one")
	require.NoError(t, err)
	boom := errors.New("boom")
	_, err = artifact.Write[artifact.File](ctx, "f", func(w io.Writer) error {
		io.WriteString(w, `"tw`)
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.Panics(t, func() {
		artifact.Write[artifact.File](ctx, "f", func(w io.Writer) error {
			io.WriteString(w, `"tw`)
			panic("task bug")
		})
	})
	var v string
	require.NoError(t, first.ReadJSON(ctx, &v), "the earlier attempt's artifact is intact")
	assert.Equal(t, "one", v)
	objs, err := s.List(ctx, "pipe", "run-1")
	require.NoError(t, err)
	require.Len(t, objs, 1, "no temporary object is visible")
	assert.Equal(t, "pipe/run-1/prep/f", objs[0].Key)
}

func TestDirRoundTrip(t *testing.T) {
	ctx, _, _ := scope(t, "train", nil)
	src := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "sub", "b.bin"), []byte("bb"), 0o600))
	d1, err := artifact.WriteDir(ctx, "ckpt", src)
	require.NoError(t, err)
	d2, err := artifact.WriteDir(ctx, "ckpt2", src)
	require.NoError(t, err)
	assert.Equal(t, d1.Digest, d2.Digest, "the same tree has the same digest")
	assert.Equal(t, artifact.KindDir, d1.Kind)

	p, err := d1.Path(ctx)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(p, "sub", "b.bin"))
	require.NoError(t, err)
	assert.Equal(t, "bb", string(b))
}

type trainOut struct {
	Model   artifact.Model              `json:"model"`
	Shards  []artifact.Dataset          `json:"shards"`
	ByName  map[string]artifact.File    `json:"byName"`
	Nested  *struct{ M artifact.Model } `json:"nested"`
	Loss    float64                     `json:"loss"`
	private artifact.File
}

func TestLocalIsUploadedByFinish(t *testing.T) {
	ctx, _, dir := scope(t, "train", nil)
	f := filepath.Join(t.TempDir(), "w.bin")
	require.NoError(t, os.WriteFile(f, []byte("w"), 0o644))
	out := trainOut{
		Model:  artifact.Local[artifact.Model](f, artifact.Meta("framework", "go")),
		Shards: []artifact.Dataset{artifact.Local[artifact.Dataset](f)},
		ByName: map[string]artifact.File{"x": artifact.Local[artifact.File](f)},
		Nested: &struct{ M artifact.Model }{artifact.Local[artifact.Model](f)},
		Loss:   0.5,
	}
	_, err := json.Marshal(out)
	require.Error(t, err, "a pending artifact cannot leave the task")

	require.NoError(t, artifact.Finish(ctx, &out))
	assert.Equal(t, "file://"+dir+"/pipe/run-1/train/model", out.Model.URI)
	assert.Equal(t, artifact.KindModel, out.Model.Kind)
	assert.Equal(t, "go", out.Model.Metadata["framework"])
	assert.Equal(t, "file://"+dir+"/pipe/run-1/train/shards.0", out.Shards[0].URI)
	assert.Equal(t, "file://"+dir+"/pipe/run-1/train/byName.x", out.ByName["x"].URI)
	assert.Equal(t, "file://"+dir+"/pipe/run-1/train/nested.M", out.Nested.M.URI)
	_, err = json.Marshal(out)
	require.NoError(t, err)

	// Output types that hold no artifact are not walked at all.
	assert.NoError(t, artifact.Finish(ctx, &struct{ A []int }{}))
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	for _, c := range []struct{ root, want string }{
		{"", "no root URL"},
		{"relative/dir", "a relative path; give an absolute one"},
		{"ftp://host/x", `unknown scheme "ftp"; use one of file, mem, s3, gs, azblob`},
		{"file://tmp/x", "three slashes"},
		{"s3:///prefix", "no bucket"},
		{"s3://bucket/p", "add import _ \"github.com/sluice-ml/sluice/artifact/stores\""},
	} {
		_, err := artifact.Open(ctx, c.root)
		if assert.Error(t, err, c.root) {
			assert.Contains(t, err.Error(), c.want, c.root)
		}
	}
}

func TestNoScope(t *testing.T) {
	_, err := artifact.Write[artifact.File](t.Context(), "x", func(io.Writer) error { return nil })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no artifact store in this context")

	ctx, _, _ := scope(t, "s", nil)
	_, err = artifact.Write[artifact.File](ctx, "../x", func(io.Writer) error { return nil })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "each part must be")
}

func TestPromoteResolve(t *testing.T) {
	ctx, s, _ := scope(t, "split", nil)
	big := strings.Repeat("x", 5000)
	out, _ := json.Marshal(map[string]any{"train": big, "val": big[:3000], "n": 3})

	got, err := artifact.Promote(ctx, out, 4096)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(got), 4096)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(got, &m))
	assert.JSONEq(t, "3", string(m["n"]), "small fields stay in-band, so refs to them still work")
	assert.Contains(t, string(m["train"]), `"kind":"value"`)
	assert.NotContains(t, string(m["val"]), `"kind":"value"`, "only the largest field goes, as it is enough")

	back, err := artifact.Resolve(ctx, got)
	require.NoError(t, err)
	assert.JSONEq(t, string(out), string(back))

	// A list that cannot fit even with its elements promoted goes whole.
	list, _ := json.Marshal(make([]int, 3000))
	got, err = artifact.Promote(ctx, list, 1024)
	require.NoError(t, err)
	back, err = artifact.Resolve(ctx, got)
	require.NoError(t, err)
	assert.JSONEq(t, string(list), string(back))

	n, err := s.DeleteValues(ctx, "pipe", "run-1")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "train, and the list whole")
	objs, _ := s.List(ctx, "pipe", "run-1")
	assert.Empty(t, objs)

	small := json.RawMessage(`{"a":1}`)
	got, err = artifact.Promote(t.Context(), small, 4096)
	require.NoError(t, err, "a small output needs no store")
	assert.Equal(t, small, got)
}

func TestCanonical(t *testing.T) {
	ctx, _, _ := scope(t, "prep", nil)
	d, err := artifact.WriteJSON[artifact.Dataset](ctx, "d", []int{1})
	require.NoError(t, err)
	ctx2, _, _ := scope(t, "prep", nil)
	d2, err := artifact.WriteJSON[artifact.Dataset](ctx2, "d", []int{1})
	require.NoError(t, err)
	d3, err := artifact.WriteJSON[artifact.Dataset](ctx2, "e", []int{2})
	require.NoError(t, err)
	in := func(d artifact.Dataset) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"data": d, "lr": 0.1})
		return b
	}
	assert.NotEqual(t, string(in(d)), string(in(d2)))
	assert.Equal(t, string(artifact.Canonical(in(d))), string(artifact.Canonical(in(d2))), "same bytes elsewhere: same key")
	assert.NotEqual(t, string(artifact.Canonical(in(d))), string(artifact.Canonical(in(d3))))
	plain := json.RawMessage(`{"lr":0.1}`)
	assert.Equal(t, plain, artifact.Canonical(plain))
}

func TestListDelete(t *testing.T) {
	ctx, s, _ := scope(t, "a", nil)
	for _, n := range []string{"x", "y"} {
		_, err := artifact.WriteJSON[artifact.File](ctx, n, n)
		require.NoError(t, err)
	}
	objs, err := s.List(ctx, "pipe", "run-1")
	require.NoError(t, err)
	require.Len(t, objs, 2)
	assert.Equal(t, "pipe/run-1/a/x", objs[0].Key)
	n, err := s.Delete(ctx, "pipe", "run-1")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	n, err = s.Delete(ctx, "pipe", "run-1")
	require.NoError(t, err)
	assert.Zero(t, n)
	_, err = s.List(ctx, "pipe", "../x")
	assert.Error(t, err)
}

func TestMemStore(t *testing.T) {
	s, err := artifact.Open(t.Context(), "mem://test/prefix")
	require.NoError(t, err)
	defer s.Close()
	ctx := artifact.NewContext(t.Context(), artifact.Scope{Store: s, Producer: artifact.Producer{Pipeline: "p", Run: "r", Step: "s"}, Dir: t.TempDir()})
	f, err := artifact.WriteJSON[artifact.Metrics](ctx, "m", map[string]float64{"auc": 0.9})
	require.NoError(t, err)
	assert.Equal(t, "mem://test/prefix/p/r/s/m", f.URI)
	var m map[string]float64
	require.NoError(t, f.ReadJSON(ctx, &m))
	assert.Equal(t, 0.9, m["auc"])
}
