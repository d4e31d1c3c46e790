// Package backendtest is the conformance suite every Sluice backend passes,
// in the shape of gocloud.dev's drivertest: a backend's test adapts the
// backend to a [Harness] and calls [RunConformanceTests].
//
// # What it checks
//
// The suite runs canonical pipelines through package pipeline, exactly as
// users do, and checks what users rely on: order, data, fan-out and
// fan-in, conditions and skip propagation, retries with separate
// application and infrastructure budgets, timeouts, the exit handler,
// caching and name mapping. A backend that passes needs few tests of its
// own beyond what is specific to it. [Cases] exports the same pipelines for
// a backend's golden-file tests.
//
// # Writing a harness
//
// The suite's tasks are Go tasks whose behaviour is scripted by the test
// (closures over counters), so a harness must run Go tasks in the test's
// process: a local executor does so directly; a cluster backend's harness
// drives a fake API server and runs the tasks itself, the way its pods
// would. A task error wrapping task.ErrInfrastructure stands for a
// preemption: a harness that simulates pods must surface it the way its
// cluster reports one (for example a DisruptionTarget pod condition).
//
//	func TestConformance(t *testing.T) {
//		backendtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
//			return &harness{}, nil
//		})
//	}
package backendtest

import (
	"context"
	"testing"

	"github.com/sluice-ml/sluice/backends"
)

// Harness adapts one backend to the suite.
type Harness interface {
	// MakeBackend returns a fresh backend for one subtest. It must
	// implement backends.Submitter and backends.Watcher. A backend that
	// caches must cache across runs of the same backend value.
	MakeBackend(ctx context.Context) (backends.Backend, error)
	// Capabilities declares how the backend departs from package
	// runstate's rules; the suite checks the declared behaviour instead.
	Capabilities() Capabilities
	// Close releases the harness's resources.
	Close()
}

// HarnessMaker is called once per subtest; Close is called when it ends.
type HarnessMaker func(ctx context.Context, t *testing.T) (Harness, error)

// RunConformanceTests runs the suite against the backends newHarness
// makes.
func RunConformanceTests(t *testing.T, newHarness HarnessMaker) {
	t.Helper()
	for _, tc := range conformance {
		t.Run(tc.name, func(t *testing.T) {
			h, err := newHarness(t.Context(), t)
			if err != nil {
				t.Fatalf("make harness: %v", err)
			}
			t.Cleanup(h.Close)
			b, err := h.MakeBackend(t.Context())
			if err != nil {
				t.Fatalf("make backend: %v", err)
			}
			tc.run(t, b, h.Capabilities())
		})
	}
}

var conformance = []struct {
	name string
	run  func(*testing.T, backends.Backend, Capabilities)
}{
	{"Diamond", testDiamond},
	{"ParamsAndFields", testParamsAndFields},
	{"WideFanOutWithParallelismCap", testWideFanOut},
	{"DynamicFanOutFanIn", testDynamicFanOutFanIn},
	{"StaticFanOutFanIn", testStaticFanOutFanIn},
	{"EmptyFanOut", testEmptyFanOut},
	{"ConditionSkipAndPropagation", testConditionSkip},
	{"FailureSkipsDependents", testFailureSkipsDependents},
	{"RetryThenSucceed", testRetryThenSucceed},
	{"PreemptionDoesNotConsumeAppBudget", testPreemption},
	{"AppBudgetExhausted", testAppBudgetExhausted},
	{"Timeout", testTimeout},
	{"ExitHandlerAfterFailure", testExitHandlerAfterFailure},
	{"ExitHandlerAfterSuccess", testExitHandlerAfterSuccess},
	{"CacheHitOnSecondRun", testCache},
	{"WeirdNames", testWeirdNames},
	{"CancelMidRun", testCancelMidRun},
	{"FanOutTolerance", testFanOutTolerance},
	{"RunMetadata", testRunMetadata},
	{"HyperparameterSearch", testSearch},
}
