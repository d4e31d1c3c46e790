// Package golden compares test output with files under testdata/, in the
// standard -update idiom. The flag is defined once, here, so that tests of
// several packages can link into one binary.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// Assert compares got with testdata/<t.Name()><ext> (subtests become
// directories; ext defaults to ".golden.yaml"). With -update it rewrites the
// file instead.
func Assert(t testing.TB, got []byte, ext ...string) {
	t.Helper()
	e := ".golden.yaml"
	if len(ext) > 0 {
		e = ext[0]
	}
	path := filepath.Join("testdata", filepath.FromSlash(t.Name())+e)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "no golden file; run: go test -run '%s' -update", t.Name())
	assert.Equal(t, string(want), string(got), "output differs from %s; if intended, rerun with -update and review the diff", path)
}
