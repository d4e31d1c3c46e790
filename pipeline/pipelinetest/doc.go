// Package pipelinetest unit-tests pipelines with go test: the same
// executor as a local run, with typed stubs, injected failures and
// preemptions, a virtual clock and a deterministic order.
//
// # Testing a pipeline
//
//	func TestDeploySkippedWhenAccuracyIsLow(t *testing.T) {
//		p, steps := build()
//		env := pipelinetest.NewEnv(t)
//		pipelinetest.Stub(env, evaluate, func(ctx context.Context, in EvalIn) (EvalOut, error) {
//			return EvalOut{Accuracy: 0.41}, nil
//		})
//		env.Inject(steps.Train, 1, pipelinetest.Preemption)
//
//		res := env.Run(p)
//
//		require.NoError(t, res.Err())
//		assert.Equal(t, []backends.Reason{"infra", ""}, res.Reasons(steps.Train))
//		assert.True(t, res.Skipped(steps.Deploy))
//	}
//
// [Stub] replaces a task's implementation; its signature is checked by the
// compiler against the task's, so a stub cannot drift from the task it
// stands for. Tasks that are not stubbed run for real.
//
// # Faults and time
//
// [Env.Inject] fails a given attempt of a step with an application error,
// a preemption or a timeout, so retry policies (separate application and
// infrastructure budgets, on-demand fall-back, backoff) can be tested
// without a cluster. The [Clock] is virtual: backoff waits and a stub's
// Clock().Sleep move virtual time instantly, and a step's timeout fires
// exactly when virtual time passes it.
//
// # Determinism
//
// An Env runs one task at a time, in plan order (a topological order in
// which ties keep the order steps were added), and fan-out instances in
// element order; [Result.Order] records the invocations. Two runs of the
// same pipeline in the same Env behave the same.
package pipelinetest
