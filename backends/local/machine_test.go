package local_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// TestWithMachineConfig runs a cached step twice on the Backend that
// WithMachineConfig returns, and checks which cache directory, if any, it
// used.
func TestWithMachineConfig(t *testing.T) {
	own, flag, def := "own", "flag", "default"
	for _, tc := range []struct {
		name    string
		opts    *local.Options
		cfg     backends.MachineConfig
		wantDir string // "" for no cache
	}{
		{"NothingSetNoCache", nil, backends.MachineConfig{}, ""},
		{"DefaultFillsIn", nil, backends.MachineConfig{DefaultCacheDir: def}, def},
		{"OwnDirWinsOverDefault", &local.Options{CacheDir: own}, backends.MachineConfig{DefaultCacheDir: def}, own},
		{"FlagWinsOverOwnDir", &local.Options{CacheDir: own}, backends.MachineConfig{CacheDir: flag, DefaultCacheDir: def}, flag},
		{"NoCacheWinsOverAll", &local.Options{CacheDir: own}, backends.MachineConfig{CacheDir: flag, DefaultCacheDir: def, NoCache: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			abs := func(d string) string {
				if d == "" {
					return ""
				}
				return filepath.Join(root, d)
			}
			var opts *local.Options
			if tc.opts != nil {
				o := *tc.opts
				o.CacheDir = abs(o.CacheDir)
				opts = &o
			}
			cfg := tc.cfg
			cfg.CacheDir, cfg.DefaultCacheDir = abs(cfg.CacheDir), abs(cfg.DefaultCacheDir)
			orig := local.New(opts)

			b := orig.WithMachineConfig(cfg)

			require.NotSame(t, orig, b)
			var calls atomic.Int32
			p := pipeline.New("machine", nil)
			pipeline.Add(p, task.New("count", func(context.Context, struct{}) (int, error) {
				return int(calls.Add(1)), nil
			}).WithCache(task.Cache{Enabled: true}), struct{}{})
			for range 2 {
				_, err := pipeline.Run(t.Context(), p, b, nil)
				require.NoError(t, err)
			}
			if tc.wantDir == "" {
				assert.Equal(t, int32(2), calls.Load(), "want no cache")
				assert.NoDirExists(t, filepath.Join(root, def))
				return
			}
			assert.Equal(t, int32(1), calls.Load(), "want the second run cached")
			assert.DirExists(t, abs(tc.wantDir))
		})
	}
}

// TestWithMachineConfigLog checks that the Log of the config receives a
// container's output unless the Backend has a log of its own.
func TestWithMachineConfigLog(t *testing.T) {
	requireShell(t)
	p := pipeline.New("machine-log", nil)
	pipeline.Add(p, task.Container[GreetIn, GreetOut]("greet", "alpine:3").
		WithCommand("/bin/sh", "-c", "echo oops >&2; exit 3"), GreetIn{})

	var cfgLog, cfgLog2, ownLog syncBuffer
	b := local.New(nil).WithMachineConfig(backends.MachineConfig{Log: &cfgLog})
	_, err := pipeline.Run(t.Context(), p, b, nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	assert.Contains(t, cfgLog.String(), "[greet] oops\n")

	b = local.New(&local.Options{Log: &ownLog}).WithMachineConfig(backends.MachineConfig{Log: &cfgLog2})
	_, err = pipeline.Run(t.Context(), p, b, nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	assert.Contains(t, ownLog.String(), "[greet] oops\n")
	assert.Empty(t, cfgLog2.String())
}
