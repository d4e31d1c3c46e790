// Package argosim is a test double of Argo Workflows' workflow controller
// (v3.7), for testing the argo backend's Submit, Watch and Cancel without
// a cluster. It runs on Argo's generated fake clientset and on a fake
// clock ([simtime.Clock]); only tests import it.
//
// Only backends/argo imports Argo's modules in Sluice's library code. This
// package is an accepted exception, as internal/testcluster is: it exists
// only to simulate Argo for tests, so it uses Argo's wfv1 types, its fake
// clientset, and Argo's own template engine (util/template,
// workflow/common, util/expr/env) to substitute parameters exactly as the
// controller does.
//
// # What it models
//
// For a Workflow of namespace "default" that [Sim.Start] is told about
// (the simulator does not watch for new Workflows), [Sim] walks the
// entrypoint DAG by depends ("X.Succeeded" terms and bare "X", which Argo
// reads as X.Succeeded || X.Skipped || X.Daemoned, and results of one
// task joined by "||": Succeeded, Skipped, Failed, Errored), evaluates
// when (an expression in it resolved first and strictly, as the
// controller's resolveDependencyReferences does: one that fails makes the
// task's node Error), expands withParam (honouring the DAG template's
// parallelism) and aggregates the loop's output parameters as Argo does
// (the Succeeded children only, in loop order, with
// tasks.X.outputs.parameters the JSON list of their parameters), decides
// a DAG's phase by its leaves as assessDAGPhase does (a Skipped or
// Omitted leaf inheriting its dependencies' failure, a leaf's continueOn
// honoured), fails a DAG node Error when an output expression without a
// default fails (not the outbound nodes Argo then leaves unset, so that
// the tasks after it are never connected and the run never ends),
// succeeds a suspend template of duration 0, substitutes
// parameters, and runs each Go task in process through the Plan step's
// Invoker with the substituted input, as the pod would run "prog task". It
// applies retryStrategy (limit, expression with lastRetry.*, backoff with
// factor and cap, timed on the clock), memoize (a cache shared by the
// Sim's runs), activeDeadlineSeconds (the task's context deadline, on the
// clock) and spec.shutdown (Cancel: running steps are stopped, no new ones
// start, the exit handler still runs), runs onExit with workflow.status
// and workflow.failures, and writes node statuses (DAG, TaskGroup, Retry,
// Pod, Skipped, Omitted nodes with phases, messages, outputs and exit
// codes) and the Workflow's phase into the Workflow status for Watch to
// map.
//
// How a Go task ends decides how its node ends:
//
//   - nil error: Succeeded, with the output as every output parameter read
//     from backends.DefaultOutputFile;
//   - an error wrapping task.ErrInfrastructure: a pod Argo marks Error (a
//     preemption), unless it also wraps [ErrOwnInfra]: then the container
//     exits backends.ExitInfrastructure and the node is Failed;
//   - an error wrapping [ErrStopped]: a pod stopped by SIGTERM (exit 143),
//     Failed with the termination message;
//   - any other error: a main container that failed, with Argo v3.7's node
//     message for it ("main: Error (exit code 1): " and the termination
//     message, where the task mode writes the error);
//   - still running at the pod's activeDeadlineSeconds on the clock: exit
//     143 with the kubelet's message.
//
// A container task runs [Options.Containers], which returns the files its
// container wrote; Argo's wait container reads the output parameters from
// them.
//
// # Time
//
// Timestamps, retry backoffs and activeDeadlineSeconds are on the
// [simtime.Clock] given to [New]: nothing happens because wall-clock time
// passed. A test steps the clock, or turns on [simtime.Clock.SetSkip] so
// that it skips ahead while every running task waits for its context or
// a backoff.
//
// # What it does not model
//
// No pods, pod specs or scheduling (podSpecPatch is only checked to be
// JSON, node selectors and tolerations are ignored), no init or wait
// containers, no artifacts, no steps templates or nested DAGs beyond what
// the argo backend compiles, no depends results other than Succeeded, no
// hooks, suspend (other than of duration 0), synchronization, daemons or
// sidecars, no
// WorkflowTemplates, CronWorkflows or workflow archive, no
// resourceVersion conflicts (the simulator writes the status with plain
// updates), no controller restarts, and memoization in memory rather than
// in a ConfigMap. Templates it cannot evaluate make it panic, so that a
// compiler change it does not understand fails the test loudly. The
// Kubernetes Job controller is simulated by internal/kubesim; a real Argo
// controller for end-to-end tests is run by internal/testcluster.
package argosim
