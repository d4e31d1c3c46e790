package e2e

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/internal/hpocase"
	"github.com/sluice-ml/sluice/internal/s3test"
	"github.com/sluice-ml/sluice/internal/testcluster"
	"github.com/sluice-ml/sluice/pipeline"
)

// searchCheck checks what a search of internal/hpocase did on a cluster
// backend (got) beyond being observably the local run (want): res and
// wantRes are the search's Results as JSON values, nil when the search
// failed.
type searchCheck func(t *testing.T, got, want *backends.RunStatus, res, wantRes map[string]any)

// TestSearch runs the hyperparameter searches of internal/hpocase on
// each cluster backend, their suggest steps and trials in pods of the
// real control plane (Jobs, or an Argo Workflow, accepted by the API
// server in a namespace enforcing Pod Security "restricted"), and checks
// that a user observes what the local run gives: every step's phase,
// message, output and attempts, so the same trials with the same
// hyperparameters, states and objectives, the same best trial, and the
// same words when the search stops early or fails.
func TestSearch(t *testing.T) {
	need(t)
	// The container trial's script runs as a host process.
	cl.Kubelet.SetImage(hpocase.QuadImage, testcluster.Image{Program: "/bin/sh", Entrypoint: []string{"/bin/sh"}})
	cases := []struct {
		name  string
		fails bool
		check searchCheck
	}{
		{name: hpocase.Adaptive, check: func(t *testing.T, got, want *backends.RunStatus, res, wantRes map[string]any) {
			assert.Len(t, res["trials"], 12)
			assert.Empty(t, hpocase.FailedTrials(res))
			assert.Empty(t, res["stopped"])
		}},
		{name: hpocase.Goal, check: func(t *testing.T, got, want *backends.RunStatus, res, wantRes map[string]any) {
			assert.NotEmpty(t, res["stopped"], "the goal ends the search early")
			assert.Equal(t, wantRes["stopped"], res["stopped"])
			assert.Less(t, len(res["trials"].([]any)), 12)
			// The rounds after the goal run no trial: their fan-outs
			// (an empty withParam on Argo) succeed with no instances.
			last := got.Step("search-trials-3")
			require.NotNil(t, last)
			assert.Equal(t, backends.PhaseSucceeded, last.Phase)
			assert.Empty(t, last.Instances)
		}},
		{name: hpocase.Failing, check: func(t *testing.T, got, want *backends.RunStatus, res, wantRes map[string]any) {
			failed := hpocase.FailedTrials(res)
			assert.NotEmpty(t, failed, "some trials failed")
			assert.LessOrEqual(t, len(failed), hpocase.FailingBudget, "within the budget")
			assert.Equal(t, hpocase.FailedTrials(wantRes), failed)
			assert.Len(t, res["trials"], 12)
		}},
		{name: hpocase.Container, check: func(t *testing.T, got, want *backends.RunStatus, res, wantRes map[string]any) {
			// The trials are the container's pods (a shell script), one
			// per proposal, read back in the order of the proposals.
			assert.Len(t, res["trials"], 12)
			assert.Empty(t, hpocase.FailedTrials(res))
			if s := got.Step("search-trials-3"); assert.NotNil(t, s) {
				assert.Len(t, s.Instances, 3)
			}
		}},
		{name: hpocase.OverBudget, fails: true, check: func(t *testing.T, got, want *backends.RunStatus, _, _ map[string]any) {
			assert.Contains(t, got.Message, `step "search-suggest-3" failed: 4 of 9 trials failed, more than MaxFailedTrials (2): trial 2: the trial failed; step search-trials-0 says why`)
			if s := got.Step("search"); assert.NotNil(t, s) {
				assert.Equal(t, backends.PhaseSkipped, s.Phase, "the result step after the failure")
			}
		}},
		{name: hpocase.OverBudgetRound, fails: true, check: func(t *testing.T, got, want *backends.RunStatus, _, _ map[string]any) {
			assert.Contains(t, got.Message, `step "search-trials-3" failed: 3 of 3 instances failed, more than the 2 tolerated`)
			if s := got.Step("search"); assert.NotNil(t, s) {
				assert.Equal(t, backends.PhaseSkipped, s.Phase, "the result step after the failure")
			}
		}},
	}
	for _, backend := range clusterBackends {
		for _, c := range cases {
			t.Run(backend+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
				defer cancel()
				p, step := hpocase.Build(c.name)
				want, werr := pipeline.Run(ctx, p, local.New(nil), nil)
				require.NotNil(t, want, "local: %v", werr)
				require.Equal(t, c.fails, werr != nil, "local: %v", werr)

				ns, _ := namespace(t, true)
				b := clusterBackend(t, backend, ns, imageFor(t, backend, c.name))
				p, _ = hpocase.Build(c.name)
				got, gerr := pipeline.Run(ctx, p, b, nil)
				require.NotNil(t, got, "%s: %v", backend, gerr)
				if c.fails {
					require.ErrorIs(t, gerr, pipeline.ErrRunFailed)
					assert.Equal(t, want.Message, got.Message, "the run's message")
				} else {
					require.NoError(t, gerr, summary(got))
				}
				var res, wantRes map[string]any
				if !c.fails {
					require.NoError(t, json.Unmarshal(got.Step(step).Output, &res), "%s", got.Step(step).Output)
					require.NoError(t, json.Unmarshal(want.Step(step).Output, &wantRes))
					hpocase.DropVolatile(res)
					hpocase.DropVolatile(wantRes)
					assert.Equal(t, wantRes, res, "the Result on %s, then locally", backend)
				}
				assert.Equal(t, observable(want), observable(got))
				c.check(t, got, want, res, wantRes)
			})
		}
	}
}

// TestSearchLarge runs a search of 40 trials whose state outgrows the
// in-band limits (hpocase.SearchLarge: kubejob's 4 KiB termination
// message from the second round on, Argo's 16 KiB output parameter for
// the Result) on each cluster backend with an S3 artifact store: the
// large outputs travel as promoted values, the kubejob orchestrator reads
// the suggest steps' proposals back from the store to fan out, the
// trials and their Result are the local run's (its digest: best trial,
// states and SHA-256), the final status holds every output whole again,
// and the promoted values are gone once the run ends. Not parallel: the store's credentials are in the environment of
// the test process, which orchestrates the kubejob runs.
func TestSearchLarge(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	srv := s3test.StartT(t)
	srv.Setenv(t)
	require.NoError(t, srv.CreateBucket(ctx, "hpo"))
	root := rootURL(srv, "hpo", "e2e")

	p, step := hpocase.SearchLarge()
	want, err := pipeline.Run(ctx, p, local.New(nil), &pipeline.RunOptions{Artifacts: root})
	require.NoError(t, err)
	var d hpocase.Digest
	require.NoError(t, json.Unmarshal(want.Step(step).Output, &d))
	require.Equal(t, hpocase.LargeTrials, d.States["complete"], "%s", want.Step(step).Output)

	for _, backend := range clusterBackends {
		t.Run(backend, func(t *testing.T) {
			ns, _ := namespace(t, true)
			secretFromEnv(t, ns, "store", srv.Env())
			b := clusterBackendWith(t, backend, kubepod.Options{Namespace: ns, Image: imageFor(t, backend, hpocase.Large), ArtifactSecret: "store"})
			p, _ := hpocase.SearchLarge()
			// Steps whose output went out of band show a reference in the
			// statuses while the run goes on; the final status holds them
			// whole again, as on local.
			var mu sync.Mutex
			outOfBand := map[string]bool{}
			progress := func(st *backends.RunStatus) {
				mu.Lock()
				defer mu.Unlock()
				for _, s := range st.Steps {
					if artifact.HasValues(s.Output) {
						outOfBand[s.Name] = true
					}
				}
			}
			got, err := pipeline.Run(ctx, p, b, &pipeline.RunOptions{Artifacts: root, Progress: progress})
			require.NoError(t, err, summary(got))
			assert.JSONEq(t, string(want.Step(step).Output), string(got.Step(step).Output), "the digest of the Result on %s, then locally", backend)

			promoted := []string{"search"}
			if backend == "kubejob" {
				promoted = append(promoted, "search-suggest-1", "search-suggest-2", "search-suggest-3", "search-suggest-4")
			}
			mu.Lock()
			for _, name := range promoted {
				assert.True(t, outOfBand[name], "%s's output went out of band during the run", name)
				assert.False(t, artifact.HasValues(got.Step(name).Output), "%s's output is whole in the final status: %.200s", name, got.Step(name).Output)
			}
			mu.Unlock()
			assert.Equal(t, observable(want), observable(got))

			s, err := artifact.Open(ctx, root)
			require.NoError(t, err)
			defer s.Close()
			objs, err := s.List(ctx, "tune", got.RunID)
			require.NoError(t, err)
			for _, o := range objs {
				assert.NotContains(t, o.Key, "/"+artifact.ValuesDir+"/", "the promoted values are deleted when the run ends")
			}
			assert.NotEmpty(t, objs, "the search's report stays")
		})
	}
}
