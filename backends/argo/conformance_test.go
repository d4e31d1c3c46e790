package argo_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/internal/argosim"
	"github.com/sluice-ml/sluice/internal/simtime"
)

// nameOnCreate makes the fake clientset generate names as the API server
// does for generateName.
func nameOnCreate(cs *fake.Clientset) {
	var n atomic.Int64
	cs.PrependReactor("create", "workflows", func(a k8stesting.Action) (bool, runtime.Object, error) {
		wf := a.(k8stesting.CreateAction).GetObject().(*wfv1.Workflow)
		if wf.Name == "" && wf.GenerateName != "" {
			wf.Name = fmt.Sprintf("%s%05d", wf.GenerateName, n.Add(1))
		}
		return false, nil, nil
	})
}

// simBackend is the argo backend whose submitted workflows the simulator
// runs.
type simBackend struct {
	*argo.Backend
	sim *argosim.Sim
}

func (b *simBackend) Submit(ctx context.Context, a backends.Artifact, opts *backends.SubmitOptions) (string, error) {
	id, err := b.Backend.Submit(ctx, a, opts)
	if err != nil {
		return id, err
	}
	var plan *backends.Plan
	a.As(&plan)
	b.sim.Start(id, plan)
	return id, nil
}

type harness struct {
	cs  *fake.Clientset
	sim *argosim.Sim
}

func (h *harness) MakeBackend(ctx context.Context) (backends.Backend, error) {
	return &simBackend{Backend: argo.New(h.cs, testOptions()), sim: h.sim}, nil
}

func (h *harness) Close() { h.sim.Close() }

// capabilities are Argo's documented departures from package runstate:
// one retry count per step ("# Retries" in the package doc) and no
// failure tolerance for a fan-out yet.
var capabilities = backendtest.Capabilities{SharedRetryCount: true}

func (h *harness) Capabilities() backendtest.Capabilities { return capabilities }

func TestCompileConformance(t *testing.T) {
	backendtest.RunCompileTests(t, argo.New(nil, testOptions()), capabilities)
}

// newSim returns a simulator of Argo's controller on cs, with opts (nil
// for defaults). Its clock skips ahead while every running task waits for
// its context to end or for a retry's backoff, so the suite's timeouts
// and backoffs pass without waiting.
func newSim(cs *fake.Clientset, opts *argosim.Options) *argosim.Sim {
	clk := simtime.New(time.Now())
	clk.SetSkip(true)
	return argosim.New(cs, clk, opts)
}

func TestConformance(t *testing.T) {
	backendtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
		cs := fake.NewSimpleClientset()
		nameOnCreate(cs)
		return &harness{cs: cs, sim: newSim(cs, nil)}, nil
	})
}
