package pipeline_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// storeWith returns a file store's root URL holding the given artifacts of
// pipeline "store-demo": run -> step -> name -> bytes.
func storeWith(t *testing.T, runs map[string]map[string]map[string]string) string {
	t.Helper()
	root := "file://" + filepath.Join(t.TempDir(), "store")
	s, err := artifact.Open(t.Context(), root)
	require.NoError(t, err)
	defer s.Close()
	for run, steps := range runs {
		for step, names := range steps {
			ctx := artifact.NewContext(t.Context(), artifact.Scope{Store: s, Producer: artifact.Producer{Pipeline: "store-demo", Run: run, Step: step}})
			for name, data := range names {
				_, err := artifact.Write[artifact.File](ctx, name, func(w io.Writer) error {
					_, err := w.Write([]byte(data))
					return err
				})
				require.NoError(t, err)
			}
		}
	}
	return root
}

func storeDemo(opts *pipeline.Options) *pipeline.Pipeline {
	p := pipeline.New("store-demo", opts)
	pipeline.Add(p, task.New("a", func(context.Context, struct{}) (int, error) { return 1, nil }), struct{}{})
	return p
}

var lsLine = regexp.MustCompile(`^(\S+)\s+(\d+)\s+(\S+)$`)

func TestArtifactsLsAndRm(t *testing.T) {
	root := storeWith(t, map[string]map[string]map[string]string{
		"r1": {"train": {"model": "weights!"}, "prep": {"train": "a,b\n1,2\n", "test": "a,b\n"}},
		"r2": {"prep": {"train": "other run"}},
	})
	p := storeDemo(nil)

	code, out, errs := exec(t, p, []string{"artifacts", "ls", "-run", "r1", "-artifacts", root})
	require.Equal(t, pipeline.ExitOK, code, errs)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 4, out)
	var keys []string
	for _, l := range lines[:3] {
		m := lsLine.FindStringSubmatch(l)
		require.NotNil(t, m, "line %q: key, size, modtime", l)
		keys = append(keys, m[1])
		assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, m[3], "RFC 3339, UTC")
	}
	assert.Equal(t, []string{"store-demo/r1/prep/test", "store-demo/r1/prep/train", "store-demo/r1/train/model"}, keys, "key order")
	assert.Contains(t, lines[0], "  4  ")
	assert.Equal(t, "total: 3 objects, 20 bytes", lines[3])

	code, out, errs = exec(t, p, []string{"artifacts", "rm", "-run", "r1", "-artifacts", root})
	require.Equal(t, pipeline.ExitOK, code, errs)
	assert.Equal(t, "deleted 3 objects of run r1 from "+root+"\n", out)

	code, out, errs = exec(t, p, []string{"artifacts", "ls", "-run", "r1", "-artifacts", root})
	assert.Equal(t, pipeline.ExitOK, code)
	assert.Equal(t, "total: 0 objects, 0 bytes\n", out)
	assert.Contains(t, errs, "no artifacts of run r1 of pipeline store-demo in "+root)

	code, out, _ = exec(t, p, []string{"artifacts", "ls", "-run", "r2", "-artifacts", root})
	assert.Equal(t, pipeline.ExitOK, code)
	assert.Contains(t, out, "store-demo/r2/prep/train", "another run is left alone")
	assert.Contains(t, out, "total: 1 object, 9 bytes")
}

func TestArtifactsRootDefaultsToThePipelines(t *testing.T) {
	root := storeWith(t, map[string]map[string]map[string]string{"r1": {"a": {"x": "1"}}})
	p := storeDemo(&pipeline.Options{Artifacts: root})

	code, out, errs := exec(t, p, []string{"artifacts", "ls", "-run", "r1"})

	require.Equal(t, pipeline.ExitOK, code, errs)
	assert.Contains(t, out, "store-demo/r1/a/x")
}

func TestArtifactsMissingStoreIsNotCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing-here")
	for _, sub := range []string{"ls", "rm"} {
		code, _, errs := exec(t, storeDemo(nil), []string{"artifacts", sub, "-run", "r1", "-artifacts", "file://" + dir})
		assert.Equal(t, pipeline.ExitOK, code)
		assert.Contains(t, errs, "no artifacts of run r1")
		_, err := os.Stat(dir)
		assert.True(t, os.IsNotExist(err), "%s must not create the store", sub)
	}
}

func TestArtifactsUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"NoSubcommand", []string{"artifacts"}, "give a subcommand: ls or rm"},
		{"UnknownSubcommand", []string{"artifacts", "du", "-run", "r1"}, `unknown subcommand "du"`},
		{"MissingRun", []string{"artifacts", "ls", "-artifacts", "mem://x"}, "-run is required"},
		{"BadRun", []string{"artifacts", "rm", "-run", "../etc", "-artifacts", "mem://x"}, `-run "../etc" is not a run id`},
		{"UnknownScheme", []string{"artifacts", "ls", "-run", "r1", "-artifacts", "ftp://host/x"}, `unknown scheme "ftp"`},
		{"RelativePath", []string{"artifacts", "ls", "-run", "r1", "-artifacts", "store/dir"}, "a relative path"},
		{"ExtraArgs", []string{"artifacts", "ls", "-run", "r1", "more"}, "unexpected arguments: more"},
		{"UnknownFlag", []string{"artifacts", "ls", "-bogus"}, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := exec(t, storeDemo(nil), tc.args)
			assert.Equal(t, pipeline.ExitInvalid, code)
			assert.Contains(t, errs, tc.want)
		})
	}
}

func TestArtifactsUnreachableStoreFails(t *testing.T) {
	// A file where the store's directory should be: reaching it fails.
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, nil, 0o644))

	code, _, errs := exec(t, storeDemo(nil), []string{"artifacts", "ls", "-run", "r1", "-artifacts", "file://" + f + "/store"})

	assert.Equal(t, pipeline.ExitFailed, code)
	assert.Contains(t, errs, "artifact store")
}

func TestArtifactsHelpIsOK(t *testing.T) {
	code, _, errs := exec(t, storeDemo(nil), []string{"artifacts", "ls", "-h"})
	assert.Equal(t, pipeline.ExitOK, code)
	assert.Contains(t, errs, "-run")
}
