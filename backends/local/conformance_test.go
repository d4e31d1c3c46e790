package local_test

import (
	"context"
	"testing"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/local"
)

func TestConformance(t *testing.T) {
	backendtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
		return harness{cacheDir: t.TempDir()}, nil
	})
}

// harness runs the suite on a local backend with the real clock and a
// cache directory per subtest.
type harness struct{ cacheDir string }

func (h harness) MakeBackend(context.Context) (backends.Backend, error) {
	return local.New(&local.Options{CacheDir: h.cacheDir}), nil
}

func (h harness) Capabilities() backendtest.Capabilities { return backendtest.Capabilities{} }

func (h harness) Close() {}

func TestCompileConformance(t *testing.T) {
	backendtest.RunCompileTests(t, local.New(nil), backendtest.Capabilities{})
}
