// Package kubesim is a test double of a Kubernetes 1.35 cluster's Job
// controller, scheduler and kubelet, and of a busy API server, for
// testing the kubejob backend's orchestrator without a cluster. It runs on
// a client-go fake clientset (k8s.io/client-go/kubernetes/fake) and on a
// fake clock ([simtime.Clock]); only tests import it.
//
// # What Cluster models
//
// [Cluster] plays, for namespace "default":
//
//   - the API server: objects created through the clientset get a UID and
//     a creation timestamp (whole seconds of the cluster's clock, strictly
//     increasing across the cluster), generateName is honoured, Jobs get
//     their defaults (backoffLimit 6, completions and parallelism 1,
//     selector and template labels controller-uid/job-name), and an update
//     of a Job or Pod keeps the stored status, as the status subresource
//     does. Jobs put straight into the tracker are defaulted when the
//     simulator first sees them;
//   - the Job controller: one pod "<job>-<n>" at a time (n from 0) while
//     the Job is neither suspended nor finished, podFailurePolicy (FailJob,
//     Ignore, Count; first matching rule wins), backoffLimit, the Job's
//     activeDeadlineSeconds, suspend/resume, and status: startTime,
//     active, ready, failed, succeeded, terminating (0), the conditions
//     SuccessCriteriaMet then Complete (with completionTime),
//     FailureTarget then Failed (same reason and message), Suspended;
//   - the scheduler and kubelet: a pod is bound to a node, goes Running
//     (after the delay given to [Cluster.SetStartDelay]) and runs its
//     container, unless the function given to [Cluster.SetScheduler] says
//     it cannot be placed: then it stays Pending with PodScheduled=False,
//     reason Unschedulable and that message, until SetScheduler is called
//     again. A Go task is invoked in process through the registered
//     Plan's Step(NAME).Invoke ([Cluster.RegisterPlan]) with the arguments
//     of backends.InvokeArgs, under task.WithAttempt and with the pod's
//     activeDeadlineSeconds as the context's deadline, on the cluster's
//     clock. The real task-invocation mode passes no attempt; the
//     simulator's, as the local backend's, has Number counting the tasks
//     started for the same run (label sluice.dev/run), step and instance
//     across all their Jobs, from 1; Instance is the label
//     sluice.dev/instance (else read from the Job name "<run>-<step>-<i>",
//     else -1); OnDemand is the label sluice.dev/on-demand=true or a Job
//     name ending in "-od".
//
// How a Go task ends decides how its pod ends:
//
//   - nil error: Succeeded, exit 0; the output is the termination message
//     when -output-file is the container's terminationMessagePath (of a
//     longer output, the last 4096 bytes, as the kubelet keeps them with
//     terminationMessagePolicy File);
//   - an error wrapping task.ErrInfrastructure: a preemption: the pod gets
//     DisruptionTarget=True (reason PreemptionByScheduler) while running,
//     then fails with exit 143;
//   - an error wrapping [ErrExitInfrastructure] (or any [ExitStatus]):
//     that exit status;
//   - any other error: exit 1;
//   - still running when the pod's activeDeadlineSeconds has passed on the
//     cluster's clock: Failed with reason DeadlineExceeded, exit 143,
//     whatever the task returns later (the kubelet stops the pod with
//     SIGTERM, on which the real task-invocation mode exits 143).
//
// A failed container's termination message follows its
// terminationMessagePolicy: the output file's content for File, and with
// FallbackToLogsOnError, when that is empty, the tail (2048 bytes) of its
// stderr, "<pipeline> task <step>: <error>", as the task-invocation mode
// prints it. A failed Go task's error text is the file's content when
// $SLUICE_TERMINATION_LOG (else /dev/termination-log) is the container's
// terminationMessagePath, as the task-invocation mode writes it there. A
// wrong invocation (no such step, input that is not JSON, unknown flag)
// exits 2 without calling any task. A container task (no "task"
// subcommand in its arguments) runs the function given to
// [Cluster.RunContainers], or else succeeds at once with an empty message.
//
// Deleting a Job deletes its pods and cancels their tasks' contexts; so
// does suspending it (those pods are not counted as failed).
// [Cluster.KillPod] deletes one running pod as "kubectl delete pod" does:
// its task is stopped (exit 143, no DisruptionTarget), the pod fails and
// is gone before the Job controller marks the Job;
// [Cluster.SetDeleteDisrupted] makes preempted pods go the same way, as
// evicted and preempted pods do. Pods are never deleted otherwise. A task
// that ignores its context keeps its goroutine until it returns, but its
// result is discarded.
//
// # Time
//
// Everything the cluster times — creation and status timestamps, start
// delays, the activeDeadlineSeconds of Jobs and pods, a task's context
// deadline — is on the [simtime.Clock] given to [New]: nothing happens
// because wall-clock time passed. A test steps the clock (it may be the
// one the orchestrator is timed by, see kubejob's export_test.go), or
// turns on [simtime.Clock.SetSkip] so that the clock skips to a pod's
// deadline while every running task waits for its context to end.
//
// # Determinism
//
// The simulator reads, writes and watches only through the clientset's
// tracker, so reactors on the clientset ([InjectFaults]) never affect it,
// and it holds the clientset's lock around each read-modify-write, so its
// writes never race with API calls made through the clientset. All
// cluster state changes happen on one goroutine, in the order of the
// events (API writes, pod starts, task results, timers), so the same
// sequence of API writes and clock steps gives the same cluster.
//
// # What it does not model
//
// No retry backoff between pods (the Job controller waits 10s, 20s, …);
// no graceful termination (deleted pods vanish at once, with no
// Terminating phase, no finalizers such as batch.kubernetes.io/job-tracking,
// no deletionTimestamp); preempted pods stay (Failed) rather than being
// deleted unless SetDeleteDisrupted was called; the Job controller marks
// a Job Complete in the same step as its pod Succeeded, not a batch period
// (1s) later, unless [Cluster.HoldCompletions] holds it; no
// resourceVersion or optimistic concurrency (the fake tracker has none:
// use InjectFaults for 409 Conflicts); only completions = parallelism = 1
// and NonIndexed Jobs; one node, no resources, quotas, node affinity or
// taints (SetScheduler decides placement); pod names are "<job>-<n>", not
// "<job>-<random>"; creation timestamps run ahead of the clock when
// objects are created faster than one per second; an error wrapping
// task.ErrInfrastructure is a preemption here, where the real
// task-invocation mode exits 3 (ErrExitInfrastructure gives that);
// -input-file is a wrong invocation (the simulator has no files); no
// namespace other than "default"; no garbage collector (a Job's pods go
// with it, whatever the propagation policy); no events, logs or exec.
// The Argo workflow controller is simulated by internal/argosim; a real
// control plane for end-to-end tests is internal/testcluster.
//
// # What Faults models
//
// [Faults] makes API calls made through the clientset's typed clients
// fail now and then, the way a busy API server does: 500s, 429s, 409
// Conflicts, creates and deletes that took effect but whose response was
// lost, watches that cannot start, and watches the server ends (with 410
// Gone now and then, so informers re-list). The faults are drawn from a
// seeded generator; the lives of watches are timed on a clock the test
// gives and steps. It does not model latency, partial lists, paging,
// bookmarks or a server that stays down.
package kubesim
