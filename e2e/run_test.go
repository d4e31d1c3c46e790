package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	argoclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/e2e/internal/pipelines"
	"github.com/sluice-ml/sluice/internal/naming"
	"github.com/sluice-ml/sluice/internal/testcluster"
	"github.com/sluice-ml/sluice/pipeline"
)

// clusterBackends are the backends that run on the cluster.
var clusterBackends = []string{"kubejob", "argo"}

// quickstartRows is the data set size the quickstart runs with on the
// cluster until outputs can leave the pod out of band (artifacts): with
// 40 rows every step's output fits in the 4 KiB a termination message
// keeps.
const quickstartRows = "rows=40"

var bestTrial = regexp.MustCompile(`(?m)^best trial: .*$`)

// TestQuickstart runs the quickstart program as a user would, with a
// kubeconfig, on each cluster backend, and checks it trains the same
// models as the local run: same best trial, same metrics.
func TestQuickstart(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	want := runProg(t, ctx, "quickstart", "", "run", "-p", quickstartRows)
	require.Equal(t, 0, want.code, "local run:\n%s%s", want.stdout, want.stderr)
	wantBest := bestTrial.FindString(want.stdout)
	require.NotEmpty(t, wantBest, want.stdout)
	for _, backend := range clusterBackends {
		t.Run(backend, func(t *testing.T) {
			ns, kubeconfig := namespace(t, true)
			got := runProg(t, ctx, "quickstart", kubeconfig, "run", "-backend", backend, "-p", quickstartRows)
			require.Equal(t, 0, got.code, "run -backend %s:\n%s\n%s", backend, got.stdout, got.stderr)
			assert.Equal(t, stepLines(want.stdout), stepLines(got.stdout), "steps, phases and attempts")
			// On a cluster the evaluate step prints its line in its pod's
			// log (kubectl logs), not on the terminal of the run.
			evals := podsByStep(t, ctx, ns)["evaluate"]
			require.Len(t, evals, 1)
			log, err := cl.Kubelet.Logs(&evals[0], "main")
			require.NoError(t, err)
			assert.Equal(t, wantBest, bestTrial.FindString(log))
		})
	}
}

// TestQuickstartDefaultSize is the quickstart at its default parameters
// on the cluster. Its 126 KB data set does not fit the 4 KiB termination
// message (kubejob) or Argo's parameter and object limits; it needs data
// out of band (the artifacts issue). Set SLUICE_E2E_DEFAULT_SIZE=1 to see
// it fail.
func TestQuickstartDefaultSize(t *testing.T) {
	need(t)
	if os.Getenv("SLUICE_E2E_DEFAULT_SIZE") != "1" {
		t.Skip("the quickstart's default 126 KB data set cannot cross a step boundary in band on a cluster until artifacts are built; SLUICE_E2E_DEFAULT_SIZE=1 runs it anyway")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	want := runProg(t, ctx, "quickstart", "", "run")
	require.Equal(t, 0, want.code, "local run:\n%s%s", want.stdout, want.stderr)
	for _, backend := range clusterBackends {
		t.Run(backend, func(t *testing.T) {
			_, kubeconfig := namespace(t, true)
			got := runProg(t, ctx, "quickstart", kubeconfig, "run", "-backend", backend)
			require.Equal(t, 0, got.code, "run -backend %s:\n%s\n%s", backend, got.stdout, got.stderr)
			assert.Equal(t, bestTrial.FindString(want.stdout), bestTrial.FindString(got.stdout))
		})
	}
}

// stepLines are the per-step lines of a run summary without durations.
func stepLines(summary string) []string {
	var out []string
	dur := regexp.MustCompile(`\s+[0-9.]+(ns|µs|ms|s|m[0-9.]*s?|h[0-9.msh]*)$`)
	for _, l := range strings.Split(summary, "\n") {
		if strings.HasPrefix(l, "  ") {
			out = append(out, dur.ReplaceAllString(strings.TrimSpace(l), ""))
		}
	}
	return out
}

// imageFor registers an image whose pods run the e2e program building
// pipeline name, counting calls in a directory of t's, and returns it.
func imageFor(t testing.TB, backend, name string) string {
	image := fmt.Sprintf("sluice.test/e2e-%s:%s", backend, naming.Fit(naming.Sanitize(strings.ToLower(name)), 60))
	cl.Kubelet.SetImage(image, testcluster.Image{
		Program:    progs["e2eprog"],
		Entrypoint: []string{pipelines.Entrypoint},
		Env:        []string{pipelines.Env + "=" + name, backendtest.StateEnv + "=" + t.TempDir()},
	})
	return image
}

// clusterBackend returns backend (kubejob or argo) running in namespace
// ns with the given image.
func clusterBackend(t testing.TB, backend, ns, image string) backends.Backend {
	switch backend {
	case "kubejob":
		b := kubejob.New(cl.Client, &kubejob.Options{Pod: kubepod.Options{Namespace: ns, Image: image}})
		t.Cleanup(func() { _ = b.Close() })
		return b
	case "argo":
		ac, err := argoclient.NewForConfig(cl.Config)
		require.NoError(t, err)
		return argo.New(ac, &argo.Options{
			Pod:        kubepod.Options{Namespace: ns, Image: image, Command: []string{pipelines.Entrypoint}},
			KubeClient: cl.Client, ControllerNamespace: testcluster.ArgoNamespace,
		})
	}
	t.Fatalf("no backend %q", backend)
	return nil
}

// TestConformance runs every pipeline of the conformance suite on each
// cluster backend and on the local backend, and compares what a user
// observes: the run's phase and message, and every step's phase,
// message, output, instances and attempts (number, phase, reason,
// message, on-demand).
func TestConformance(t *testing.T) {
	need(t)
	for _, backend := range clusterBackends {
		for _, c := range backendtest.Cases() {
			t.Run(backend+"/"+c.Name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
				defer cancel()
				want, werr := pipeline.Run(ctx, c.Build(), local.New(nil), nil)
				require.NotNil(t, want, "local: %v", werr)

				ns, _ := namespace(t, true)
				b := clusterBackend(t, backend, ns, imageFor(t, backend, c.Name))
				got, gerr := pipeline.Run(ctx, c.Build(), b, nil)
				require.NotNil(t, got, "%s: %v", backend, gerr)
				exp := observable(want)
				for _, d := range divergences {
					if d.backend == backend && (d.pipeline == "" || d.pipeline == c.Name) {
						d.apply(&exp)
					}
				}
				assert.Equal(t, exp.Phase == backends.PhaseSucceeded, gerr == nil, "error: %v", gerr)
				assert.Equal(t, exp, observable(got))
			})
		}
	}
}

// divergence is a known way a cluster backend's run differs from the
// local run; the fidelity test expects exactly that outcome instead, so a
// change on either side still fails it.
type divergence struct {
	backend, pipeline string // pipeline "" means every pipeline
	why               string
	apply             func(want *observed)
}

// divergences are documented behaviours (go doc ./backends/argo); each
// entry goes when its cause does. Every wording of a run, a skip and a
// failure comes from package runstate on every backend, so none is here.
var divergences = []divergence{
	{
		backend: "argo", pipeline: "Retries",
		why: "go doc ./backends/argo, # Retries: Argo keeps one retry count per step, so with App 1 and Infra 2 an application failure after a preemption finds its budget used up",
		apply: func(w *observed) {
			for i := range w.Steps {
				if s := &w.Steps[i]; s.Name == "mixed" {
					s.Phase, s.Output = backends.PhaseFailed, ""
					s.Attempts = s.Attempts[:2]
					s.Message = s.Attempts[1].Message
					w.Phase, w.Message = backends.PhaseFailed, fmt.Sprintf("step %q failed: %s", s.Name, s.Message)
				}
			}
		},
	},
}

func (o observed) failedSteps() []string {
	var out []string
	for _, s := range o.Steps {
		if s.Phase == backends.PhaseFailed {
			out = append(out, s.Name)
		}
	}
	return out
}

// observed is the part of a run's status that does not depend on where
// it ran: no times, run ids, cache keys.
type observed struct {
	Phase   backends.Phase
	Message string
	Steps   []observedStep
}

type observedStep struct {
	Name      string
	Phase     backends.Phase
	Message   string
	Output    string
	Attempts  []backends.Attempt
	Instances []observedStep
}

func observable(st *backends.RunStatus) observed {
	o := observed{Phase: st.Phase, Message: st.Message}
	for _, s := range st.Steps {
		o.Steps = append(o.Steps, observeStep(s))
	}
	return o
}

func observeStep(s backends.StepStatus) observedStep {
	o := observedStep{Name: s.Name, Phase: s.Phase, Message: s.Message, Output: canonical(s.Output)}
	for _, a := range s.Attempts {
		a.Started, a.Finished = time.Time{}, time.Time{}
		o.Attempts = append(o.Attempts, a)
	}
	for _, in := range s.Instances {
		o.Instances = append(o.Instances, observeStep(in))
	}
	return o
}

// canonical re-encodes a JSON document so that formatting does not count.
func canonical(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
