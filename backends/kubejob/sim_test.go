package kubejob_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/task"
)

// The cluster simulator: the Kubernetes 1.35 Job controller, scheduler and
// kubelet for namespace "default" of a fake clientset, enough to test the
// orchestrator against. See cluster.

var (
	jobsGVR = batchv1.SchemeGroupVersion.WithResource("jobs")
	jobsGVK = batchv1.SchemeGroupVersion.WithKind("Job")
	podsGVR = corev1.SchemeGroupVersion.WithResource("pods")
	podsGVK = corev1.SchemeGroupVersion.WithKind("Pod")
)

// Labels the API server and the Job controller put on a Job's pod template
// and pods.
const (
	labelJobName          = "job-name"
	labelBatchJobName     = "batch.kubernetes.io/job-name"
	labelControllerUID    = "controller-uid"
	labelBatchControllerU = "batch.kubernetes.io/controller-uid"
	// The orchestrator's labels for a fan-out instance's index and an
	// on-demand fall-back Job, read for task.Attempt.
	labelInstance = "sluice.dev/instance"
	labelOnDemand = "sluice.dev/on-demand"
)

// Messages and reasons as Kubernetes 1.35 writes them.
const (
	msgBackoffLimit   = "Job has reached the specified backoff limit"
	msgJobDeadline    = "Job was active longer than specified deadline"
	msgPodDeadline    = "Pod was active on the node longer than the specified deadline"
	msgCompletions    = "Reached expected number of succeeded pods"
	msgPreemption     = "default-scheduler: preempting to accommodate a higher priority pod"
	reasonPodDeadline = "DeadlineExceeded"
	exitSIGTERM       = 143 // 128 + SIGTERM: the container stopped on request
	exitSIGKILL       = 137 // 128 + SIGKILL: the kubelet killed the container
	maxLogMessage     = 2048
	simNode           = "sim-node-0"
)

// exitStatus, returned (wrapped or not) by a simulated Go task, makes its
// container exit with that status and the error text on stderr, like
// the task-invocation mode does for status 1 and 3.
type exitStatus int

func (e exitStatus) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// errExit3 makes a task exit with backends.ExitInfrastructure, as the real
// task-invocation mode does for an error wrapping task.ErrInfrastructure.
// (In the simulator, an error wrapping task.ErrInfrastructure itself is a
// preemption instead; see cluster.)
var errExit3 error = exitStatus(backends.ExitInfrastructure)

// cluster simulates, on a fake clientset, what a Kubernetes 1.35 cluster
// does with the orchestrator's Jobs, for namespace "default":
//
//   - the API server: objects created through cs get a UID and a creation
//     timestamp (whole seconds, strictly increasing across the cluster),
//     generateName is honoured, Jobs get their defaults (backoffLimit 6,
//     completions and parallelism 1, selector and template labels
//     controller-uid/job-name), and an update of a Job or Pod through cs
//     keeps the stored status, as the status subresource does. Jobs put
//     straight into the tracker are defaulted when the simulator first
//     sees them;
//   - the Job controller: one pod "<job>-<n>" at a time (n from 0) while the
//     Job is neither suspended nor finished, podFailurePolicy (FailJob,
//     Ignore, Count; first matching rule wins), backoffLimit, the Job's
//     activeDeadlineSeconds, suspend/resume, and status: startTime,
//     active, ready, failed, succeeded, terminating (0), the conditions
//     SuccessCriteriaMet then Complete (with completionTime), FailureTarget
//     then Failed (same reason and message), Suspended;
//   - the scheduler and kubelet: a pod is bound to a node, goes Running
//     (after the delay given to setStartDelay) and runs its container,
//     unless the function given to setScheduler says it cannot be placed:
//     then it stays Pending with PodScheduled=False, reason Unschedulable
//     and that message, until setScheduler is called again. A Go task is invoked in
//     process through the registered Plan's Step(NAME).Invoke with the
//     arguments of backends.InvokeArgs, under task.WithAttempt and with
//     the pod's activeDeadlineSeconds as the context's deadline. The real
//     task-invocation mode passes no attempt; the simulator's, as the local
//     backend's, has Number counting the tasks started for the same run
//     (label sluice.dev/run), step and instance across all their Jobs, from
//     1; Instance is the label sluice.dev/instance (else read from the Job
//     name "<run>-<step>-<i>", else -1); OnDemand is the label
//     sluice.dev/on-demand=true or a Job name ending in "-od".
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
//   - an error wrapping errExit3 (or any exitStatus): that exit status;
//   - any other error: exit 1;
//   - still running when the pod's activeDeadlineSeconds passes: Failed with
//     reason DeadlineExceeded, exit 143, whatever the task returns later
//     (the kubelet stops the pod with SIGTERM, on which the real
//     task-invocation mode exits 143).
//
// A failed container's termination message follows its
// terminationMessagePolicy: the output file's content for File, and with
// FallbackToLogsOnError, when that is empty, the tail (2048 bytes) of its
// stderr, "<pipeline> task <step>: <error>", as the task-invocation mode
// prints it. A failed Go task's error text is the file's content when
// $SLUICE_TERMINATION_LOG (else /dev/termination-log) is the container's
// terminationMessagePath, as the task-invocation mode writes it there. A wrong invocation (no such step, input that is not JSON,
// unknown flag) exits 2 without calling any task. A container task (no
// "task" subcommand in its arguments) runs the function given to
// runContainers, or else succeeds at once with an empty message.
//
// Deleting a Job deletes its pods and cancels their tasks' contexts; so
// does suspending it (those pods are not counted as failed). killPod
// deletes one running pod as "kubectl delete pod" does: its task is
// stopped (exit 143, no DisruptionTarget), the pod fails and is gone
// before the Job controller marks the Job; setDeleteDisrupted makes
// preempted pods go the same way, as evicted and preempted pods do. Pods
// are never deleted otherwise. A task that ignores its context keeps its
// goroutine until it returns, but its result is discarded.
//
// The simulator reads, writes and watches only through cs.Tracker(), so
// reactors on cs (injectFaults) never affect it, and it holds cs's lock
// around each read-modify-write, so its writes never race with API calls
// made through cs. All cluster state changes happen on one goroutine, in
// the order of the events (API writes, pod starts, task results, timers),
// so the same sequence of API writes gives the same cluster.
//
// Known deviations from a real cluster: no retry backoff between pods
// (the Job controller waits 10s, 20s, …); no graceful termination (deleted
// pods vanish at once, with no Terminating phase, no finalizers such as
// batch.kubernetes.io/job-tracking, no deletionTimestamp), preempted pods
// stay (Failed) rather than being deleted unless setDeleteDisrupted was
// called; the Job controller marks a Job Complete in the same step as its
// pod Succeeded, not a batch period (1s) later, unless holdCompletions
// holds it; no resourceVersion or
// optimistic concurrency (the fake tracker has none: use injectFaults for
// 409 Conflicts); only completions = parallelism = 1 and NonIndexed Jobs;
// pod names are "<job>-<n>", not "<job>-<random>"; creation timestamps run
// ahead of the wall clock when objects are created faster than one per
// second; an error wrapping task.ErrInfrastructure is a preemption here,
// where the real task-invocation mode exits 3 (errExit3 gives that);
// -input-file is a wrong invocation (the simulator has no files).
type cluster struct {
	t  testing.TB
	cs *fake.Clientset
	tr clienttesting.ObjectTracker
	ns string

	ctx    context.Context
	cancel context.CancelFunc
	loops  sync.WaitGroup // the controller and the watch goroutines
	tasks  sync.WaitGroup // running tasks
	once   sync.Once

	qmu   sync.Mutex // guards queue, timer, done
	queue []func()
	wake  chan struct{}
	timer map[*time.Timer]bool
	done  bool

	cmu       sync.Mutex // guards the clock
	lastTick  time.Time
	uidSerial int

	mu         sync.Mutex // guards what follows; held by the controller while it handles an event
	startDelay time.Duration
	delDisrupt bool // delete preempted pods once failed
	holdDone   bool // leave succeeded Jobs without their conditions
	held       []*simJob
	schedule   func(pod *corev1.Pod) (unschedulable string)
	plans      map[string]*backends.Plan
	jobs       map[string]*simJob
	startedN   map[string]int // job name -> pods that went Running
	attemptsN  map[string]int // "run/step/instance" -> tasks started
	containers func(ctx context.Context, pod *corev1.Pod) (message string, err error)
}

// simJob is the controller's memory of one Job.
type simJob struct {
	name, uid string
	pods      []*simPod // every pod created, in order
	active    *simPod   // the pod not yet finished, if any
	failed    int32     // status.failed
	succeeded int32
	finished  bool
	startedAt time.Time   // wall clock at status.startTime, for the deadline
	deadline  *time.Timer // the Job's activeDeadlineSeconds
}

// simPod is one pod of a Job, and its task while it runs.
type simPod struct {
	name, uid string
	index     int // 0 for the Job's first pod
	running   bool
	waiting   bool               // not placed: unschedulable
	deleted   bool               // killPod: gone once it has failed
	stop      context.CancelFunc // cancels the task
	deadline  time.Time          // zero without activeDeadlineSeconds
}

// newCluster starts simulating the Job controller and kubelet for
// namespace "default" on cs. It is closed by t.Cleanup.
func newCluster(t testing.TB, cs *fake.Clientset) *cluster {
	ctx, cancel := context.WithCancel(context.Background())
	c := &cluster{
		t: t, cs: cs, tr: cs.Tracker(), ns: metav1.NamespaceDefault,
		ctx: ctx, cancel: cancel,
		wake:      make(chan struct{}, 1),
		timer:     map[*time.Timer]bool{},
		plans:     map[string]*backends.Plan{},
		jobs:      map[string]*simJob{},
		startedN:  map[string]int{},
		attemptsN: map[string]int{},
	}
	cs.PrependReactor("*", "*", c.apiServer)
	// Watch before listing, so no Job is missed; a Job seen twice is
	// synced twice, which is harmless.
	w, err := c.tr.Watch(jobsGVR, c.ns)
	if err != nil {
		t.Fatalf("sim: watch jobs: %v", err)
	}
	list, err := c.tr.List(jobsGVR, jobsGVK, c.ns)
	if err != nil {
		t.Fatalf("sim: list jobs: %v", err)
	}
	for _, j := range list.(*batchv1.JobList).Items {
		c.post(func() { c.sync(j.Name) })
	}
	c.loops.Add(2)
	go c.watch(w)
	go c.control()
	t.Cleanup(c.close)
	return c
}

// registerPlan lets the Jobs of pipeline plan.Name run: their Go tasks
// are plan.Step(NAME).Invoke. Jobs created before are held until then.
func (c *cluster) registerPlan(plan *backends.Plan) {
	c.mu.Lock()
	c.plans[plan.Name] = plan
	c.mu.Unlock()
	c.post(c.syncAll)
}

// setStartDelay makes pods created from now on wait d before they run.
func (c *cluster) setStartDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startDelay = d
}

// setScheduler makes f the scheduler's verdict on pods: "" places a pod,
// any other text leaves it Pending and unschedulable with that message.
// Pods left Pending before are tried again. nil places every pod.
func (c *cluster) setScheduler(f func(pod *corev1.Pod) (unschedulable string)) {
	c.mu.Lock()
	c.schedule = f
	c.mu.Unlock()
	c.post(func() {
		for _, sj := range c.jobs {
			j := c.job(sj.name)
			if p := sj.active; p != nil && p.waiting && j != nil {
				if plan := c.plans[j.Labels[kubejob.LabelPipeline]]; plan != nil {
					c.startPod(sj, p, plan)
				}
			}
		}
	})
}

// runContainers makes f the program of every container task's container
// (a container without the "task" subcommand): it returns what the
// container writes to its termination message file, and an error that
// ends the container as a Go task's would (see cluster). Without it,
// such containers succeed at once with an empty message.
func (c *cluster) runContainers(f func(ctx context.Context, pod *corev1.Pod) (message string, err error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.containers = f
}

// preempt disrupts running pod name as the scheduler's preemption does,
// whatever its task is doing: the task's context is canceled, the pod gets
// DisruptionTarget=True and fails with exit 143, and the Job controller
// reacts. It reports whether the pod was running.
func (c *cluster) preempt(name string) bool {
	return c.stopRunning(name, false, result{exit: exitSIGTERM, preempted: true})
}

// stopRunning stops running pod name, marks it deleted if asked, and ends
// it with res; it reports whether the pod was running.
func (c *cluster) stopRunning(name string, deleted bool, res result) bool {
	done := make(chan bool, 1)
	c.post(func() {
		for _, sj := range c.jobs {
			if p := sj.active; p != nil && p.name == name && p.running {
				p.stop()
				p.deleted = p.deleted || deleted
				c.podExited(sj, p, res)
				done <- true
				return
			}
		}
		done <- false
	})
	select {
	case ok := <-done:
		return ok
	case <-c.ctx.Done():
		return false
	}
}

// setDeleteDisrupted makes pods that fail with DisruptionTarget (see
// preempt) disappear once they have failed, before the Job controller
// marks their Job Failed, as the kubelet deletes an evicted or preempted
// pod once the Job controller has counted it.
func (c *cluster) setDeleteDisrupted(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delDisrupt = on
}

// killPod deletes running pod name as "kubectl delete pod" does: its task
// is stopped, the container exits 143 (the task mode's status for
// SIGTERM), the pod fails without DisruptionTarget and is gone before the
// Job controller reacts. It reports whether the pod was running.
func (c *cluster) killPod(name string) bool {
	return c.stopRunning(name, true, result{exit: exitSIGTERM, output: "stopped (terminated signal received): context canceled"})
}

// close stops the simulation: it cancels the running tasks and waits for
// every goroutine of the simulator, tasks included (a task still running
// ten seconds after its context was canceled is reported as an error).
// It is idempotent.
func (c *cluster) close() {
	c.once.Do(func() {
		c.qmu.Lock()
		c.done = true
		for tm := range c.timer {
			tm.Stop()
		}
		c.queue = nil
		c.qmu.Unlock()
		c.cancel()
		c.loops.Wait()
		done := make(chan struct{})
		go func() { c.tasks.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.t.Errorf("sim: tasks still running 10s after close; they ignore their context")
		}
	})
}

// podsOf returns the pods of Job job that exist now, oldest first.
func (c *cluster) podsOf(job string) []*corev1.Pod {
	list, err := c.tr.List(podsGVR, podsGVK, c.ns)
	if err != nil {
		c.t.Errorf("sim: list pods: %v", err)
		return nil
	}
	var out []*corev1.Pod
	for i := range list.(*corev1.PodList).Items {
		if p := &list.(*corev1.PodList).Items[i]; p.Labels[labelJobName] == job {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Pod) int {
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	return out
}

// started returns how many pods of Job job (of any Job of that name, over
// the life of the cluster) went Running.
func (c *cluster) started(job string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.startedN[job]
}

// job returns Job name as stored now, or nil.
func (c *cluster) job(name string) *batchv1.Job {
	obj, err := c.tr.Get(jobsGVR, c.ns, name)
	if err != nil {
		return nil
	}
	return obj.(*batchv1.Job)
}

// finished returns the type (Complete or Failed) and reason of Job name's
// terminal condition, or "" while it has none.
func (c *cluster) finished(name string) (batchv1.JobConditionType, string) {
	j := c.job(name)
	if j == nil {
		return "", ""
	}
	for _, cond := range j.Status.Conditions {
		if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue {
			return cond.Type, cond.Reason
		}
	}
	return "", ""
}

// post queues f for the controller goroutine.
func (c *cluster) post(f func()) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.done {
		return
	}
	c.queue = append(c.queue, f)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// after posts f after d.
func (c *cluster) after(d time.Duration, f func()) *time.Timer {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.done {
		return nil
	}
	var tm *time.Timer
	tm = time.AfterFunc(d, func() {
		c.qmu.Lock()
		delete(c.timer, tm)
		c.qmu.Unlock()
		c.post(f)
	})
	c.timer[tm] = true
	return tm
}

func (c *cluster) stopTimer(tm *time.Timer) {
	if tm == nil {
		return
	}
	tm.Stop()
	c.qmu.Lock()
	delete(c.timer, tm)
	c.qmu.Unlock()
}

// control runs queued events one at a time.
func (c *cluster) control() {
	defer c.loops.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.wake:
		}
		for {
			c.qmu.Lock()
			if len(c.queue) == 0 || c.done {
				c.qmu.Unlock()
				break
			}
			f := c.queue[0]
			c.queue = c.queue[1:]
			c.qmu.Unlock()
			c.mu.Lock()
			f()
			c.mu.Unlock()
		}
	}
}

// watch turns Job events into syncs. It never blocks on the controller,
// since the tracker panics when a watcher falls 100 events behind.
func (c *cluster) watch(w watch.Interface) {
	defer c.loops.Done()
	defer w.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			if m, err := meta.Accessor(ev.Object); err == nil {
				name := m.GetName()
				c.post(func() { c.sync(name) })
			}
		}
	}
}

// tick returns a creation timestamp: whole seconds, strictly increasing,
// never behind the wall clock.
func (c *cluster) tick() metav1.Time {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	t := time.Now().Truncate(time.Second)
	if !t.After(c.lastTick) {
		t = c.lastTick.Add(time.Second)
	}
	c.lastTick = t
	return metav1.NewTime(t)
}

// now returns the time for status fields: whole seconds, never behind
// the last creation timestamp.
func (c *cluster) now() metav1.Time {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	t := time.Now().Truncate(time.Second)
	if t.Before(c.lastTick) {
		t = c.lastTick
	}
	return metav1.NewTime(t)
}

// newUID returns a deterministic UUID-shaped UID.
func (c *cluster) newUID() types.UID {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	c.uidSerial++
	return types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", c.uidSerial))
}

// apiServer is a reactor playing the API server's part in calls made
// through cs: it fills in what the server would on create and keeps the
// status on updates of the main resource. It changes the action's copy
// and lets the chain go on, so it composes with other reactors in any
// order.
func (c *cluster) apiServer(action clienttesting.Action) (bool, runtime.Object, error) {
	switch a := action.(type) {
	case clienttesting.CreateActionImpl:
		if a.GetSubresource() != "" {
			break
		}
		m, err := meta.Accessor(a.GetObject())
		if err != nil {
			break
		}
		if m.GetName() == "" && m.GetGenerateName() != "" {
			m.SetName(m.GetGenerateName() + strings.ToLower(string(c.newUID())[30:]))
		}
		if m.GetUID() == "" {
			m.SetUID(c.newUID())
		}
		if ts := m.GetCreationTimestamp(); ts.IsZero() {
			m.SetCreationTimestamp(c.tick())
		}
		if j, ok := a.GetObject().(*batchv1.Job); ok {
			defaultJob(j)
		}
	case clienttesting.UpdateActionImpl:
		if a.GetSubresource() != "" || a.GetNamespace() != c.ns {
			break
		}
		switch o := a.GetObject().(type) {
		case *batchv1.Job:
			if cur, err := c.tr.Get(jobsGVR, c.ns, o.Name); err == nil {
				cur.(*batchv1.Job).Status.DeepCopyInto(&o.Status)
			}
		case *corev1.Pod:
			if cur, err := c.tr.Get(podsGVR, c.ns, o.Name); err == nil {
				cur.(*corev1.Pod).Status.DeepCopyInto(&o.Status)
			}
		}
	}
	return false, nil, nil
}

// defaultJob applies the API server's defaults to a Job with a UID.
func defaultJob(j *batchv1.Job) {
	s := &j.Spec
	if s.Parallelism == nil {
		s.Parallelism = ptr.To[int32](1)
	}
	if s.Completions == nil {
		s.Completions = ptr.To[int32](1)
	}
	if s.BackoffLimit == nil {
		s.BackoffLimit = ptr.To[int32](6)
	}
	if s.CompletionMode == nil {
		s.CompletionMode = ptr.To(batchv1.NonIndexedCompletion)
	}
	if s.Suspend == nil {
		s.Suspend = ptr.To(false)
	}
	if s.PodReplacementPolicy == nil {
		if s.PodFailurePolicy != nil {
			s.PodReplacementPolicy = ptr.To(batchv1.Failed)
		} else {
			s.PodReplacementPolicy = ptr.To(batchv1.TerminatingOrFailed)
		}
	}
	if j.UID == "" {
		return
	}
	uid := string(j.UID)
	if s.Selector == nil && (s.ManualSelector == nil || !*s.ManualSelector) {
		s.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{labelBatchControllerU: uid}}
	}
	l := s.Template.Labels
	if l == nil {
		l = map[string]string{}
	}
	if _, ok := l[labelBatchControllerU]; !ok {
		l[labelBatchControllerU] = uid
		l[labelControllerUID] = uid
		l[labelBatchJobName] = j.Name
		l[labelJobName] = j.Name
	}
	s.Template.Labels = l
}

// modify applies f to the stored object gvr/name and writes it back when
// f returns true, holding cs's lock so that no API call interleaves.
func (c *cluster) modify(gvr schema.GroupVersionResource, name string, f func(runtime.Object) bool) (runtime.Object, error) {
	c.cs.Lock()
	defer c.cs.Unlock()
	obj, err := c.tr.Get(gvr, c.ns, name)
	if err != nil {
		return nil, err
	}
	if !f(obj) {
		return obj, nil
	}
	return obj, c.tr.Update(gvr, obj, c.ns)
}

func (c *cluster) modifyJob(name string, f func(*batchv1.Job) bool) (*batchv1.Job, error) {
	obj, err := c.modify(jobsGVR, name, func(o runtime.Object) bool { return f(o.(*batchv1.Job)) })
	if err != nil {
		return nil, err
	}
	return obj.(*batchv1.Job), nil
}

func (c *cluster) modifyPod(name string, f func(*corev1.Pod)) {
	_, err := c.modify(podsGVR, name, func(o runtime.Object) bool { f(o.(*corev1.Pod)); return true })
	if err != nil && !apierrors.IsNotFound(err) {
		c.t.Errorf("sim: update pod %s: %v", name, err)
	}
}

// syncAll syncs every stored Job.
func (c *cluster) syncAll() {
	list, err := c.tr.List(jobsGVR, jobsGVK, c.ns)
	if err != nil {
		c.t.Errorf("sim: list jobs: %v", err)
		return
	}
	for _, j := range list.(*batchv1.JobList).Items {
		c.sync(j.Name)
	}
}

// sync is the Job controller's reconciliation of Job name.
func (c *cluster) sync(name string) {
	obj, err := c.tr.Get(jobsGVR, c.ns, name)
	if apierrors.IsNotFound(err) {
		c.gone(name)
		return
	} else if err != nil {
		c.t.Errorf("sim: get job %s: %v", name, err)
		return
	}
	job := obj.(*batchv1.Job)
	sj := c.jobs[name]
	if sj != nil && job.UID != "" && string(job.UID) != sj.uid {
		c.gone(name) // deleted and created again under the same name
		sj = nil
	}
	if job.UID == "" || job.Spec.Selector == nil || job.Spec.Suspend == nil {
		job, err = c.modifyJob(name, func(j *batchv1.Job) bool {
			if j.UID == "" {
				j.UID = c.newUID()
			}
			if j.CreationTimestamp.IsZero() {
				j.CreationTimestamp = c.tick()
			}
			defaultJob(j)
			return true
		})
		if err != nil {
			return
		}
	}
	if sj == nil {
		sj = &simJob{name: name, uid: string(job.UID)}
		c.jobs[name] = sj
	}
	if isFinished(job) {
		sj.finished = true
	}
	if sj.finished {
		return
	}
	plan := c.plans[job.Labels[kubejob.LabelPipeline]]
	if plan == nil {
		return // held until registerPlan
	}
	if *job.Spec.Completions != 1 || *job.Spec.Parallelism != 1 || *job.Spec.CompletionMode != batchv1.NonIndexedCompletion {
		c.t.Errorf("sim: Job %s: only completions = parallelism = 1 and NonIndexed are simulated", name)
		return
	}
	now := c.now()
	if *job.Spec.Suspend {
		c.stopTimer(sj.deadline)
		sj.deadline = nil
		if sj.active != nil {
			c.deletePod(sj, sj.active)
		}
		c.setJobStatus(name, func(st *batchv1.JobStatus) {
			st.Active, st.Ready = 0, ptr.To[int32](0)
			setJobCondition(st, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", now)
		})
		return
	}
	resumed := false
	c.setJobStatus(name, func(st *batchv1.JobStatus) {
		if cond := jobCondition(st, batchv1.JobSuspended); cond != nil && cond.Status == corev1.ConditionTrue {
			setJobCondition(st, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", now)
			st.StartTime = nil // the deadline starts again
			resumed = true
		}
		if st.StartTime == nil {
			st.StartTime = ptr.To(now)
			sj.startedAt = time.Now()
		}
	})
	job = c.job(name)
	if job == nil {
		return
	}
	if sj.startedAt.IsZero() && job.Status.StartTime != nil {
		sj.startedAt = job.Status.StartTime.Time // started before the simulator saw it
	}
	if ads := job.Spec.ActiveDeadlineSeconds; ads != nil && (sj.deadline == nil || resumed) {
		c.stopTimer(sj.deadline)
		end := sj.startedAt.Add(time.Duration(*ads) * time.Second)
		if !time.Now().Before(end) {
			c.jobDeadline(sj)
			return
		}
		sj.deadline = c.after(time.Until(end), func() { c.jobDeadline(sj) })
	}
	if sj.active == nil && sj.succeeded == 0 {
		c.createPod(job, sj, plan)
	}
}

// gone forgets a deleted Job: its pods are deleted and their tasks stopped.
func (c *cluster) gone(name string) {
	sj := c.jobs[name]
	if sj == nil {
		return
	}
	delete(c.jobs, name)
	c.stopTimer(sj.deadline)
	for _, p := range sj.pods {
		if p.stop != nil {
			p.stop()
		}
		if err := c.tr.Delete(podsGVR, c.ns, p.name); err != nil && !apierrors.IsNotFound(err) {
			c.t.Errorf("sim: delete pod %s: %v", p.name, err)
		}
	}
	sj.active = nil
}

// deletePod deletes the active pod of sj and stops its task.
func (c *cluster) deletePod(sj *simJob, p *simPod) {
	if p.stop != nil {
		p.stop()
	}
	if sj.active == p {
		sj.active = nil
	}
	if err := c.tr.Delete(podsGVR, c.ns, p.name); err != nil && !apierrors.IsNotFound(err) {
		c.t.Errorf("sim: delete pod %s: %v", p.name, err)
	}
}

func podCondition(pod *corev1.Pod, typ corev1.PodConditionType) (corev1.PodCondition, bool) {
	for _, c := range pod.Status.Conditions {
		if c.Type == typ && c.Status == corev1.ConditionTrue {
			return c, true
		}
	}
	return corev1.PodCondition{}, false
}

func isFinished(j *batchv1.Job) bool {
	for _, cond := range j.Status.Conditions {
		if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func jobCondition(st *batchv1.JobStatus, typ batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == typ {
			return &st.Conditions[i]
		}
	}
	return nil
}

// setJobCondition adds or changes a condition; lastTransitionTime changes
// only with the status.
func setJobCondition(st *batchv1.JobStatus, typ batchv1.JobConditionType, status corev1.ConditionStatus, reason, msg string, now metav1.Time) {
	if cond := jobCondition(st, typ); cond != nil {
		if cond.Status != status {
			cond.LastTransitionTime = now
		}
		cond.Status, cond.Reason, cond.Message, cond.LastProbeTime = status, reason, msg, now
		return
	}
	st.Conditions = append(st.Conditions, batchv1.JobCondition{
		Type: typ, Status: status, Reason: reason, Message: msg, LastProbeTime: now, LastTransitionTime: now,
	})
}

// setJobStatus applies f to Job name's stored status and writes it when
// it changed.
func (c *cluster) setJobStatus(name string, f func(*batchv1.JobStatus)) {
	_, err := c.modifyJob(name, func(j *batchv1.Job) bool {
		old := j.Status.DeepCopy()
		f(&j.Status)
		if j.Status.Terminating == nil {
			j.Status.Terminating = ptr.To[int32](0)
		}
		if j.Status.UncountedTerminatedPods == nil {
			j.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
		}
		return !equalJSON(old, &j.Status)
	})
	if err != nil && !apierrors.IsNotFound(err) {
		c.t.Errorf("sim: update job %s: %v", name, err)
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// createPod creates the next pod of job and schedules its start.
func (c *cluster) createPod(job *batchv1.Job, sj *simJob, plan *backends.Plan) {
	n := len(sj.pods)
	name := fmt.Sprintf("%s-%d", job.Name, n)
	for {
		if _, err := c.tr.Get(podsGVR, c.ns, name); apierrors.IsNotFound(err) {
			break
		}
		n++
		name = fmt.Sprintf("%s-%d", job.Name, n)
	}
	tmpl := job.Spec.Template.DeepCopy()
	labels := maps.Clone(tmpl.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[labelJobName], labels[labelBatchJobName] = job.Name, job.Name
	labels[labelControllerUID], labels[labelBatchControllerU] = string(job.UID), string(job.UID)
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: c.ns, UID: c.newUID(), CreationTimestamp: c.tick(),
			Labels: labels, Annotations: tmpl.Annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: tmpl.Spec,
		Status: corev1.PodStatus{
			Phase: corev1.PodPending,
			Conditions: []corev1.PodCondition{{
				Type: corev1.PodScheduled, Status: corev1.ConditionFalse, LastTransitionTime: c.now(),
			}},
		},
	}
	if err := c.tr.Create(podsGVR, pod, c.ns); err != nil {
		c.t.Errorf("sim: create pod %s: %v", name, err)
		return
	}
	p := &simPod{name: name, uid: string(pod.UID), index: len(sj.pods)}
	sj.pods = append(sj.pods, p)
	sj.active = p
	c.setJobStatus(job.Name, func(st *batchv1.JobStatus) { st.Active = 1; st.Ready = ptr.To[int32](0) })
	start := func() { c.startPod(sj, p, plan) }
	if d := c.startDelay; d > 0 {
		c.after(d, start)
	} else {
		c.post(start)
	}
}

// startPod binds pod p, runs it, and starts its task.
func (c *cluster) startPod(sj *simJob, p *simPod, plan *backends.Plan) {
	if sj.active != p || c.jobs[sj.name] != sj {
		return // deleted meanwhile
	}
	obj, err := c.tr.Get(podsGVR, c.ns, p.name)
	if err != nil {
		return
	}
	pod := obj.(*corev1.Pod)
	now := c.now()
	if c.schedule != nil {
		if why := c.schedule(pod); why != "" {
			p.waiting = true
			c.modifyPod(p.name, func(pod *corev1.Pod) {
				pod.Status.Conditions = []corev1.PodCondition{{
					Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
					Reason: corev1.PodReasonUnschedulable, Message: why, LastTransitionTime: now,
				}}
			})
			return
		}
	}
	p.waiting = false
	c.modifyPod(p.name, func(pod *corev1.Pod) {
		pod.Spec.NodeName = simNode
		st := &pod.Status
		st.Phase = corev1.PodRunning
		st.StartTime = ptr.To(now)
		st.HostIP, st.PodIP = "10.0.0.1", fmt.Sprintf("10.1.%d.%d", p.index/250, p.index%250+2)
		st.Conditions = nil
		for _, typ := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
			st.Conditions = append(st.Conditions, corev1.PodCondition{Type: typ, Status: corev1.ConditionTrue, LastTransitionTime: now})
		}
		st.ContainerStatuses = nil
		for _, ctr := range pod.Spec.Containers {
			st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
				Name: ctr.Name, Image: ctr.Image, ImageID: ctr.Image, ContainerID: "sim://" + p.uid + "/" + ctr.Name,
				Ready: true, Started: ptr.To(true),
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			})
		}
	})
	p.running = true
	c.startedN[sj.name]++
	c.setJobStatus(sj.name, func(st *batchv1.JobStatus) { st.Ready = ptr.To[int32](1) })

	ctx, cancel := c.ctx, context.CancelFunc(nil)
	if ads := pod.Spec.ActiveDeadlineSeconds; ads != nil {
		p.deadline = time.Now().Add(time.Duration(*ads) * time.Second)
		ctx, cancel = context.WithDeadline(ctx, p.deadline)
		c.after(time.Until(p.deadline), func() { c.podDeadline(sj, p) })
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	p.stop = cancel
	run := c.program(pod, sj, p, plan)
	c.tasks.Add(1)
	go func() {
		defer c.tasks.Done()
		defer cancel()
		r := run(ctx)
		c.post(func() { c.podExited(sj, p, r) })
	}()
}

// result is how a container ended.
type result struct {
	exit      int32
	output    string // the content of the termination message file
	stderr    string
	preempted bool
}

// program returns the container's process: the Go task its arguments
// name, run as the task-invocation mode would.
func (c *cluster) program(pod *corev1.Pod, sj *simJob, p *simPod, plan *backends.Plan) func(context.Context) result {
	ctr := pod.Spec.Containers[0]
	argv := append(slices.Clone(ctr.Command), ctr.Args...)
	i := slices.Index(argv, backends.InvokeCommand)
	if i < 0 { // a container task
		run := c.containers
		if run == nil {
			return func(context.Context) result { return result{} }
		}
		pod = pod.DeepCopy()
		return func(ctx context.Context) result {
			msg, err := run(ctx, pod)
			return outcome([]byte(msg), err, true, func() string { return err.Error() + "\n" })
		}
	}
	prog := plan.DisplayName
	if prog == "" {
		prog = plan.Name
	}
	invalid := func(format string, args ...any) func(context.Context) result {
		msg := fmt.Sprintf(prog+" task: "+format+"\n", args...)
		return func(context.Context) result { return result{exit: 2, stderr: msg} }
	}
	fs := flag.NewFlagSet(backends.InvokeCommand, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	step := fs.String("step", "", "")
	input := fs.String("input", "", "")
	inputFile := fs.String("input-file", "", "")
	outputFile := fs.String("output-file", backends.DefaultOutputFile, "")
	if err := fs.Parse(argv[i+1:]); err != nil {
		return invalid("%v", err)
	}
	s := plan.Step(*step)
	if s == nil && plan.Exit != nil && plan.Exit.Name == *step {
		s = plan.Exit
	}
	if s == nil || s.Invoke == nil {
		return invalid("no Go task step %q", *step)
	}
	if *inputFile != "" {
		return invalid("open %s: no such file or directory (the simulator has no files)", *inputFile)
	}
	in := []byte(*input)
	if strings.TrimSpace(*input) == "" {
		in = []byte("{}")
	}
	if !json.Valid(in) {
		return invalid("the input of step %q is not valid JSON", *step)
	}
	tmPath := ctr.TerminationMessagePath
	if tmPath == "" {
		tmPath = corev1.TerminationMessagePathDefault
	}
	toLog := *outputFile == tmPath
	// The task mode writes a failed task's error to the file
	// $SLUICE_TERMINATION_LOG (else /dev/termination-log) names, when it
	// exists: the kubelet makes only the terminationMessagePath.
	errLog := backends.TerminationLog
	for _, e := range ctr.Env {
		if e.Name == backends.TerminationLogEnv && e.Value != "" {
			errLog = e.Value
		}
	}
	errToLog := errLog == tmPath
	attempt := task.Attempt{Step: s.Name, Instance: instanceOf(sj.name, pod.Labels, s.Name),
		OnDemand: pod.Labels[labelOnDemand] == "true" || strings.HasSuffix(sj.name, "-od")}
	unit := fmt.Sprintf("%s/%s/%d", pod.Labels[kubejob.LabelRun], s.Name, attempt.Instance)
	c.attemptsN[unit]++
	attempt.Number = c.attemptsN[unit]
	var traceparent string
	for _, e := range ctr.Env {
		if e.Name == backends.TraceParentEnv {
			traceparent = e.Value
		}
	}
	inv := s.Invoke
	return func(ctx context.Context) result {
		ctx = backends.ContextWithTraceParent(task.WithAttempt(ctx, attempt), traceparent)
		out, err := inv.Invoke(ctx, in)
		r := outcome(out, err, toLog, func() string { return fmt.Sprintf("%s task %s: %v\n", prog, s.Name, err) })
		if err != nil && !r.preempted && errToLog {
			r.output = err.Error()
		}
		return r
	}
}

// outcome is how a container whose program returned out and err ends;
// toLog says whether out went to the termination message file.
func outcome(out []byte, err error, toLog bool, stderr func() string) result {
	var code exitStatus
	switch {
	case err == nil:
		r := result{}
		if toLog {
			r.output = string(out)
		}
		return r
	case errors.As(err, &code):
		return result{exit: int32(code), stderr: stderr()}
	case errors.Is(err, task.ErrInfrastructure):
		return result{exit: exitSIGTERM, preempted: true}
	}
	return result{exit: 1, stderr: stderr()}
}

// instanceOf returns a fan-out instance's index: the pod's label
// sluice.dev/instance or else the end of its Job's name
// "<run>-<step>-<i>[-od]"; -1 for a step that is no instance.
func instanceOf(job string, labels map[string]string, step string) int {
	if v, ok := labels[labelInstance]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	rest, ok := strings.CutPrefix(strings.TrimSuffix(job, "-od"), labels[kubejob.LabelRun]+"-"+step+"-")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return -1
	}
	return n
}

// podDeadline fails pod p once its activeDeadlineSeconds has passed.
func (c *cluster) podDeadline(sj *simJob, p *simPod) {
	if sj.active != p || c.jobs[sj.name] != sj {
		return
	}
	p.stop()
	c.podFailed(sj, p, result{exit: exitSIGTERM}, reasonPodDeadline, msgPodDeadline)
}

// podExited records how p's container ended.
func (c *cluster) podExited(sj *simJob, p *simPod, r result) {
	if sj.active != p || c.jobs[sj.name] != sj {
		return // deleted, suspended or timed out meanwhile: discarded
	}
	if !p.deadline.IsZero() && !time.Now().Before(p.deadline) {
		c.podDeadline(sj, p)
		return
	}
	if r.exit == 0 {
		c.podSucceeded(sj, p, r)
		return
	}
	if r.preempted {
		now := c.now()
		c.modifyPod(p.name, func(pod *corev1.Pod) {
			pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
				Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
				Reason: corev1.PodReasonPreemptionByScheduler, Message: msgPreemption, LastTransitionTime: now,
			})
		})
	}
	c.podFailed(sj, p, r, "", "")
}

// terminate writes p's end: phase, container state, Ready=False.
func (c *cluster) terminate(p *simPod, phase corev1.PodPhase, r result, reason, msg string) *corev1.Pod {
	now := c.now()
	var out *corev1.Pod
	c.modifyPod(p.name, func(pod *corev1.Pod) {
		st := &pod.Status
		st.Phase, st.Reason, st.Message = phase, reason, msg
		for i := range st.Conditions {
			if typ := st.Conditions[i].Type; typ == corev1.PodReady || typ == corev1.ContainersReady {
				st.Conditions[i].Status = corev1.ConditionFalse
				st.Conditions[i].Reason = "PodCompleted"
				if phase == corev1.PodFailed {
					st.Conditions[i].Reason = "PodFailed"
				}
				st.Conditions[i].LastTransitionTime = now
			}
		}
		for i := range st.ContainerStatuses {
			cs := &st.ContainerStatuses[i]
			started := now
			if cs.State.Running != nil {
				started = cs.State.Running.StartedAt
			}
			ctr := pod.Spec.Containers[i]
			tr := &corev1.ContainerStateTerminated{
				ExitCode: r.exit, Reason: "Completed", StartedAt: started, FinishedAt: now,
				ContainerID: cs.ContainerID, Message: terminationMessage(ctr, r),
			}
			if r.exit != 0 {
				tr.Reason = "Error"
			}
			cs.State = corev1.ContainerState{Terminated: tr}
			cs.Ready, cs.Started = false, ptr.To(false)
		}
		out = pod.DeepCopy()
	})
	return out
}

// terminationMessage is what the kubelet reports for a container that
// ended with r.
func terminationMessage(ctr corev1.Container, r result) string {
	msg := r.output
	if len(msg) > kubejob.MaxTerminationMessage {
		msg = msg[len(msg)-kubejob.MaxTerminationMessage:] // the kubelet reads the file's tail
	}
	if msg == "" && r.exit != 0 && ctr.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		msg = r.stderr
		if len(msg) > maxLogMessage {
			msg = msg[len(msg)-maxLogMessage:]
		}
	}
	return msg
}

// podSucceeded completes p and with it the Job (unless completions are
// held, see holdCompletions).
func (c *cluster) podSucceeded(sj *simJob, p *simPod, r result) {
	c.terminate(p, corev1.PodSucceeded, r, "", "")
	sj.active = nil
	sj.succeeded = 1
	sj.finished = true
	c.stopTimer(sj.deadline)
	if c.holdDone {
		c.held = append(c.held, sj)
		return
	}
	c.complete(sj)
}

// holdCompletions(true) leaves the Jobs whose pod succeeds from now on
// without SuccessCriteriaMet and Complete, as the real Job controller does
// for a while (it batches pod updates for a second, and its client is
// rate-limited); holdCompletions(false) completes them.
func (c *cluster) holdCompletions(on bool) {
	done := make(chan struct{})
	c.post(func() {
		c.holdDone = on
		if !on {
			for _, sj := range c.held {
				if c.jobs[sj.name] == sj {
					c.complete(sj)
				}
			}
			c.held = nil
		}
		close(done)
	})
	select {
	case <-done:
	case <-c.ctx.Done():
	}
}

// complete writes a succeeded Job's conditions.
func (c *cluster) complete(sj *simJob) {
	now := c.now()
	c.setJobStatus(sj.name, func(st *batchv1.JobStatus) {
		st.Active, st.Ready, st.Succeeded = 0, ptr.To[int32](0), sj.succeeded
		setJobCondition(st, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, batchv1.JobReasonCompletionsReached, msgCompletions, now)
	})
	c.setJobStatus(sj.name, func(st *batchv1.JobStatus) {
		setJobCondition(st, batchv1.JobComplete, corev1.ConditionTrue, batchv1.JobReasonCompletionsReached, msgCompletions, now)
		st.CompletionTime = ptr.To(now)
	})
}

// podFailed fails p, then applies the Job's podFailurePolicy and
// backoffLimit.
func (c *cluster) podFailed(sj *simJob, p *simPod, r result, reason, msg string) {
	pod := c.terminate(p, corev1.PodFailed, r, reason, msg)
	sj.active = nil
	job := c.job(sj.name)
	if job == nil || pod == nil {
		return
	}
	action, why := batchv1.PodFailurePolicyActionCount, ""
	if pfp := job.Spec.PodFailurePolicy; pfp != nil {
		if a, m, ok := matchPodFailurePolicy(pfp, pod); ok {
			action, why = a, m
		}
	}
	if _, disrupted := podCondition(pod, corev1.DisruptionTarget); p.deleted || (disrupted && c.delDisrupt) {
		// Counted, its tracking finalizer removed: the kubelet's final
		// delete removes it before the Job's status says anything.
		if err := c.tr.Delete(podsGVR, c.ns, p.name); err != nil && !apierrors.IsNotFound(err) {
			c.t.Errorf("sim: delete pod %s: %v", p.name, err)
		}
	}
	switch action {
	case batchv1.PodFailurePolicyActionIgnore:
		c.setJobStatus(sj.name, func(st *batchv1.JobStatus) { st.Active, st.Ready = 0, ptr.To[int32](0) })
	case batchv1.PodFailurePolicyActionFailJob:
		sj.failed++
		c.failJob(sj, batchv1.JobReasonPodFailurePolicy, why)
		return
	default: // Count
		sj.failed++
		if sj.failed > *job.Spec.BackoffLimit {
			c.failJob(sj, batchv1.JobReasonBackoffLimitExceeded, msgBackoffLimit)
			return
		}
		c.setJobStatus(sj.name, func(st *batchv1.JobStatus) { st.Active, st.Ready, st.Failed = 0, ptr.To[int32](0), sj.failed })
	}
	if job.Spec.Suspend != nil && *job.Spec.Suspend {
		return
	}
	if plan := c.plans[job.Labels[kubejob.LabelPipeline]]; plan != nil {
		c.createPod(job, sj, plan)
	}
}

// failJob fails the Job: FailureTarget, its active pod deleted, then
// Failed with the same reason and message.
func (c *cluster) failJob(sj *simJob, reason, msg string) {
	sj.finished = true
	c.stopTimer(sj.deadline)
	now := c.now()
	c.setJobStatus(sj.name, func(st *batchv1.JobStatus) {
		st.Failed = sj.failed
		setJobCondition(st, batchv1.JobFailureTarget, corev1.ConditionTrue, reason, msg, now)
	})
	if sj.active != nil {
		c.deletePod(sj, sj.active)
	}
	c.setJobStatus(sj.name, func(st *batchv1.JobStatus) {
		st.Active, st.Ready = 0, ptr.To[int32](0)
		setJobCondition(st, batchv1.JobFailed, corev1.ConditionTrue, reason, msg, now)
	})
}

// jobDeadline fails the Job once its activeDeadlineSeconds has passed;
// a pod it kills counts as failed.
func (c *cluster) jobDeadline(sj *simJob) {
	if c.jobs[sj.name] != sj || sj.finished {
		return
	}
	job := c.job(sj.name)
	if job == nil || (job.Spec.Suspend != nil && *job.Spec.Suspend) {
		return
	}
	if sj.active != nil {
		sj.failed++
	}
	c.failJob(sj, batchv1.JobReasonDeadlineExceeded, msgJobDeadline)
}

// matchPodFailurePolicy returns the action of the first rule of pfp that
// failed pod matches, and the message the Job controller gives a FailJob.
func matchPodFailurePolicy(pfp *batchv1.PodFailurePolicy, pod *corev1.Pod) (batchv1.PodFailurePolicyAction, string, bool) {
	for i, rule := range pfp.Rules {
		if req := rule.OnExitCodes; req != nil {
			for _, cs := range pod.Status.ContainerStatuses {
				t := cs.State.Terminated
				if t == nil || t.ExitCode == 0 || (req.ContainerName != nil && *req.ContainerName != cs.Name) {
					continue
				}
				in := slices.Contains(req.Values, t.ExitCode)
				if in == (req.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) {
					return rule.Action, fmt.Sprintf("Container %s for pod %s/%s failed with exit code %d matching %s rule at index %d",
						cs.Name, pod.Namespace, pod.Name, t.ExitCode, rule.Action, i), true
				}
			}
		}
		for _, pat := range rule.OnPodConditions {
			status := pat.Status
			if status == "" {
				status = corev1.ConditionTrue
			}
			for _, cond := range pod.Status.Conditions {
				if cond.Type == pat.Type && cond.Status == status {
					return rule.Action, fmt.Sprintf("Pod %s/%s has condition %s matching %s rule at index %d",
						pod.Namespace, pod.Name, cond.Type, rule.Action, i), true
				}
			}
		}
	}
	return "", "", false
}
