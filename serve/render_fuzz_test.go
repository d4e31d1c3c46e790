package serve_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/serve"
)

// FuzzRender builds targets from fuzzed values and checks that Validate
// never panics, that every target it accepts renders on its platform
// without error, and that rendering is deterministic.
func FuzzRender(f *testing.F) {
	f.Add("churn", "prod", "KServe", "Serverless", "sklearn", "", "v2", 1, 0, 4, 0, 8, 0, "", "", 0, 10, 0, "a", 50, false, "500m", "")
	f.Add("llm", "staging", "Kubernetes", "", "sluice-go", "", "v2", 2, 2, 3, 70, 0, 0, "1", "0", 5, 0, 0, "", 0, true, "1", "3g.20gb")
	f.Add("x", "dev", "KServe", "RawDeployment", "onnx", "kserve-tritonserver", "v1", 0, 0, 0, 0, 0, 10, "25%", "x", -1, 120, 3, "A", 30, true, "", "1g.5gb")
	f.Fuzz(func(t *testing.T, name, level, platform, mode, format, runtimeName, protocol string,
		minR, initial, maxR, cpu, conc, rps int, surge, unavail string, minReady, canary, variants int,
		variant string, weight int, transformer bool, cpuReq, mig string) {
		tgt := serve.Target{
			Name: name, Level: serve.Level(level), Platform: serve.Platform(platform), Mode: serve.Mode(mode),
			Runtime:   serve.Runtime{Name: runtimeName, Image: "registry.example/ml/churn:1"},
			Protocol:  serve.Protocol(protocol),
			Resources: resources.Profile{CPU: cpuReq, Memory: "1Gi", MIG: mig, NodePool: "a100-mig"},
			NodePools: []resources.NodePool{migPool},
			Replicas:  serve.Replicas{Min: &minR, Initial: initial, Max: maxR},
			Autoscale: serve.Autoscale{CPUPercent: cpu, Concurrency: conc, RPS: rps},
			Rollout:   serve.Rollout{MaxSurge: surge, MaxUnavailable: unavail, MinReadySeconds: minReady},
			Canary:    canary,
		}
		if mig == "" {
			tgt.Resources.NodePool = ""
		}
		for i := range variants % 4 {
			tgt.Variants = append(tgt.Variants, serve.Variant{Name: variant + string(rune('a'+i)), Weight: weight})
		}
		if canary > 0 && tgt.Platform == serve.Kubernetes {
			tgt.Stable = &churnV1
			tgt.Gateway = serve.GatewayRef{Name: "gw"}
		}
		if len(tgt.Variants) > 1 && tgt.Platform == serve.Kubernetes {
			tgt.Gateway = serve.GatewayRef{Name: "gw"}
		}
		if transformer {
			tgt.Transformer = &serve.Transformer{Image: "registry.example/ml/churn:1", Resources: resources.Profile{CPU: "100m"}}
		}
		m := serve.Model{URI: "s3://m/1", Format: serve.Format(format)}
		if err := tgt.Validate(m); err != nil {
			require.NotEmpty(t, serve.FieldErrors(err), "every error is a field error: %v", err)
			return
		}
		var a, b bytes.Buffer
		require.NoError(t, serve.Render(tgt, m, &a))
		require.NoError(t, serve.Render(tgt, m, &b))
		require.Equal(t, a.String(), b.String())
		require.NotEmpty(t, a.String())
	})
}
