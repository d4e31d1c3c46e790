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
// without a cluster. [Instance] names one instance of a ForEach fan-out,
// to fail only that one (env.Inject(pipelinetest.Instance(trials, 3), 1,
// pipelinetest.Preemption)) and to read its attempts and reasons. A
// handle that names nothing the run has (a step of another pipeline, an
// instance beyond the fan-out, a whole fan-out's attempts) fails the test
// with the list of the pipeline's steps, never silently does nothing.
// The [Clock] is virtual: backoff waits and a stub's
// Clock().Sleep move virtual time instantly, and a step's timeout fires
// exactly when virtual time passes it.
//
// # The run's id and times
//
// A run in an Env has the id <pipeline>-<n> and starts at the virtual
// clock's time ([Epoch] for the first). [Env.RunWith] fixes them, and
// the time the run is scheduled for, which pipeline.RunID,
// pipeline.RunStarted and pipeline.RunScheduled give the steps:
//
//	res := env.RunWith(p, pipelinetest.RunOptions{
//		RunID:     "nightly-42",
//		Start:     time.Date(2026, 12, 1, 6, 0, 3, 0, time.UTC),
//		Scheduled: time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC),
//	})
//	assert.Equal(t, "dt=2026-12-01", pipelinetest.Output(res, partition))
//
// # Artifacts
//
// Each Env has its own artifact store, in memory ([Env.Store]), which all
// its runs write to: tests never touch the disk store, and see what the
// tasks wrote. [Seed] puts an input artifact into it, to feed to a step
// as a fixed input or to return from a stub; [Env.ReadArtifact] reads an
// artifact back, checked against its digest; [Result.Artifacts] lists
// what a run stored:
//
//	func TestPrepSplitsTheRawData(t *testing.T) {
//		env := pipelinetest.NewEnv(t)
//		raw := pipelinetest.Seed[artifact.Dataset](env, "raw", []byte("a,b\n1,2\n"), artifact.MediaType("text/csv"))
//		p := pipeline.New("prep", nil)
//		prep := pipeline.Add(p, prepTask, PrepIn{Raw: raw})
//
//		res := env.Run(p)
//
//		require.NoError(t, res.Err())
//		train, err := env.ReadArtifact(pipelinetest.Output(res, prep).Train.Artifact)
//		require.NoError(t, err)
//		assert.Equal(t, "a,b\n1,2\n", string(train))
//		assert.Len(t, res.Artifacts(), 1)
//	}
//
// A stub returns artifacts as a task does: it writes them through its
// context (artifact.Write, artifact.WriteJSON), returns artifact.Local,
// or returns a seeded one:
//
//	model := pipelinetest.Seed[artifact.Model](env, "model", onnxBytes, artifact.Meta("framework", "onnx"))
//	pipelinetest.Stub(env, train, func(context.Context, TrainIn) (TrainOut, error) {
//		return TrainOut{Model: model}, nil
//	})
//
// [Env.ArtifactContext] gives a context with the Env's store, to call a
// task's function directly or to read an artifact with its own methods.
//
// # Misuse
//
// A call the Env cannot honor fails the test with a message that names
// the call and the fix, and lists the pipeline's steps when a step was
// wrong: a nil pipeline, a nil or zero step handle (pipeline.Step{},
// pipeline.Fan{}, an Instance of one), a step the run does not have, a
// zero task, a stub of a task no step of the next run is made from, a
// zero artifact. Where there is no test to fail (NewEnv(nil), a nil or
// zero Env, Result or Clock) the call panics with such a message.
//
// # Determinism
//
// An Env runs one task at a time, in plan order (a topological order in
// which ties keep the order steps were added), and fan-out instances in
// element order; [Result.Order] records the invocations. Two runs of the
// same pipeline in the same Env behave the same.
package pipelinetest
