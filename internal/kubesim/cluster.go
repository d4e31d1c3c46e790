package kubesim

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
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/internal/simtime"
	"github.com/sluice-ml/sluice/task"
)

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
	// The orchestrator's label for a fan-out instance's index, read for
	// task.Attempt.
	labelInstance = "sluice.dev/instance"
)

// LabelOnDemand is the orchestrator's label of an on-demand fall-back Job
// and its pods ("true"), read for task.Attempt.OnDemand.
const LabelOnDemand = "sluice.dev/on-demand"

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

// ExitStatus, returned (wrapped or not) by a simulated Go task, makes its
// container exit with that status and the error text on stderr, as the
// task-invocation mode does for status 1 and 3.
type ExitStatus int

func (e ExitStatus) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// ErrExitInfrastructure makes a task exit with backends.ExitInfrastructure,
// as the real task-invocation mode does for an error wrapping
// task.ErrInfrastructure. (In the simulator, an error wrapping
// task.ErrInfrastructure itself is a preemption instead; see the package
// doc.)
var ErrExitInfrastructure error = ExitStatus(backends.ExitInfrastructure)

// Cluster simulates the Job controller, scheduler and kubelet of
// namespace "default" on a fake clientset; the package doc says what it
// models. Its methods are safe for concurrent use. The zero value is not
// usable; use New.
type Cluster struct {
	t  testing.TB
	cs *fake.Clientset
	tr clienttesting.ObjectTracker
	ns string

	ctx    context.Context
	cancel context.CancelFunc
	loops  sync.WaitGroup // the controller and the watch goroutines
	tasks  sync.WaitGroup // running tasks
	once   sync.Once

	clk *simtime.Clock

	qmu   sync.Mutex // guards queue and done; never held while calling clk
	queue []func()
	wake  chan struct{}
	done  bool

	tmu   sync.Mutex // guards timer; never held while calling clk
	timer map[clock.Timer]bool

	cmu       sync.Mutex // guards the timestamps
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
	startedAt time.Time   // clk at status.startTime, for the deadline
	deadline  clock.Timer // the Job's activeDeadlineSeconds
}

// simPod is one pod of a Job, and its task while it runs.
type simPod struct {
	name, uid string
	index     int // 0 for the Job's first pod
	running   bool
	waiting   bool               // not placed: unschedulable
	deleted   bool               // KillPod: gone once it has failed
	stop      context.CancelFunc // cancels the task
	deadline  time.Time          // zero without activeDeadlineSeconds
}

// New starts simulating the Job controller, scheduler and kubelet for
// namespace "default" on cs, timed by clk (nil: a clock of its own at the
// current time, which only the test moves). It is closed by t.Cleanup.
func New(t testing.TB, cs *fake.Clientset, clk *simtime.Clock) *Cluster {
	if clk == nil {
		clk = simtime.New(time.Now())
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{
		t: t, cs: cs, tr: cs.Tracker(), ns: metav1.NamespaceDefault,
		ctx: ctx, cancel: cancel, clk: clk,
		wake:      make(chan struct{}, 1),
		timer:     map[clock.Timer]bool{},
		plans:     map[string]*backends.Plan{},
		jobs:      map[string]*simJob{},
		startedN:  map[string]int{},
		attemptsN: map[string]int{},
	}
	cs.PrependReactor("*", "*", c.APIServer)
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
	t.Cleanup(c.Close)
	return c
}

// RegisterPlan lets the Jobs of pipeline plan.Name run: their Go tasks
// are plan.Step(NAME).Invoke. Jobs created before are held until then.
func (c *Cluster) RegisterPlan(plan *backends.Plan) {
	c.mu.Lock()
	c.plans[plan.Name] = plan
	c.mu.Unlock()
	c.post(c.syncAll)
}

// SetStartDelay makes pods created from now on wait d, on the cluster's
// clock, before they run.
func (c *Cluster) SetStartDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startDelay = d
}

// SetScheduler makes f the scheduler's verdict on pods: "" places a pod,
// any other text leaves it Pending and unschedulable with that message.
// Pods left Pending before are tried again. nil places every pod.
func (c *Cluster) SetScheduler(f func(pod *corev1.Pod) (unschedulable string)) {
	c.mu.Lock()
	c.schedule = f
	c.mu.Unlock()
	c.post(func() {
		for _, sj := range c.jobs {
			j := c.Job(sj.name)
			if p := sj.active; p != nil && p.waiting && j != nil {
				if plan := c.plans[j.Labels[kubejob.LabelPipeline]]; plan != nil {
					c.startPod(sj, p, plan)
				}
			}
		}
	})
}

// RunContainers makes f the program of every container task's container
// (a container without the "task" subcommand): it returns what the
// container writes to its termination message file, and an error that
// ends the container as a Go task's would (see the package doc). Without it,
// such containers succeed at once with an empty message.
func (c *Cluster) RunContainers(f func(ctx context.Context, pod *corev1.Pod) (message string, err error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.containers = f
}

// Preempt disrupts running pod name as the scheduler's preemption does,
// whatever its task is doing: the task's context is canceled, the pod gets
// DisruptionTarget=True and fails with exit 143, and the Job controller
// reacts. It reports whether the pod was running.
func (c *Cluster) Preempt(name string) bool {
	return c.stopRunning(name, false, result{exit: exitSIGTERM, preempted: true})
}

// stopRunning stops running pod name, marks it deleted if asked, and ends
// it with res; it reports whether the pod was running.
func (c *Cluster) stopRunning(name string, deleted bool, res result) bool {
	done := make(chan bool, 1)
	c.post(func() {
		for _, sj := range c.jobs {
			if p := sj.active; p != nil && p.name == name && p.running {
				p.stop()
				p.deleted = p.deleted || deleted
				c.podExited(sj, p, res, c.clk.Now())
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

// SetDeleteDisrupted makes pods that fail with DisruptionTarget (see
// Preempt) disappear once they have failed, before the Job controller
// marks their Job Failed, as the kubelet deletes an evicted or preempted
// pod once the Job controller has counted it.
func (c *Cluster) SetDeleteDisrupted(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delDisrupt = on
}

// KillPod deletes running pod name as "kubectl delete pod" does: its task
// is stopped, the container exits 143 (the task mode's status for
// SIGTERM), the pod fails without DisruptionTarget and is gone before the
// Job controller reacts. It reports whether the pod was running.
func (c *Cluster) KillPod(name string) bool {
	return c.stopRunning(name, true, result{exit: exitSIGTERM, output: "stopped (terminated signal received): context canceled"})
}

// Close stops the simulation: it cancels the running tasks and waits for
// every goroutine of the simulator, tasks included (a task still running
// ten seconds after its context was canceled is reported as an error).
// It is idempotent.
func (c *Cluster) Close() {
	c.once.Do(func() {
		c.qmu.Lock()
		c.done = true
		c.queue = nil
		c.qmu.Unlock()
		c.tmu.Lock()
		timers := c.timer
		c.timer = map[clock.Timer]bool{}
		c.tmu.Unlock()
		for tm := range timers {
			tm.Stop()
		}
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

// PodsOf returns the pods of Job job that exist now, oldest first.
func (c *Cluster) PodsOf(job string) []*corev1.Pod {
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

// Started returns how many pods of Job job (of any Job of that name, over
// the life of the cluster) went Running.
func (c *Cluster) Started(job string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.startedN[job]
}

// Job returns Job name as stored now, or nil.
func (c *Cluster) Job(name string) *batchv1.Job {
	obj, err := c.tr.Get(jobsGVR, c.ns, name)
	if err != nil {
		return nil
	}
	return obj.(*batchv1.Job)
}

// Finished returns the type (Complete or Failed) and reason of Job name's
// terminal condition, or "" while it has none.
func (c *Cluster) Finished(name string) (batchv1.JobConditionType, string) {
	j := c.Job(name)
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
func (c *Cluster) post(f func()) {
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

// after posts f once d has passed on the cluster's clock.
func (c *Cluster) after(d time.Duration, f func()) clock.Timer {
	if d <= 0 {
		c.post(f)
		return nil
	}
	// The callback runs under the clock's lock: it only queues.
	tm := c.clk.AfterFunc(d, func() { c.post(f) })
	c.tmu.Lock()
	c.timer[tm] = true
	c.tmu.Unlock()
	return tm
}

func (c *Cluster) stopTimer(tm clock.Timer) {
	if tm == nil {
		return
	}
	tm.Stop()
	c.tmu.Lock()
	delete(c.timer, tm)
	c.tmu.Unlock()
}

// control runs queued events one at a time.
func (c *Cluster) control() {
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
func (c *Cluster) watch(w watch.Interface) {
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
// never behind the cluster's clock.
func (c *Cluster) tick() metav1.Time {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	t := c.clk.Now().Truncate(time.Second)
	if !t.After(c.lastTick) {
		t = c.lastTick.Add(time.Second)
	}
	c.lastTick = t
	return metav1.NewTime(t)
}

// now returns the time for status fields: whole seconds, never behind
// the last creation timestamp.
func (c *Cluster) now() metav1.Time {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	t := c.clk.Now().Truncate(time.Second)
	if t.Before(c.lastTick) {
		t = c.lastTick
	}
	return metav1.NewTime(t)
}

// newUID returns a deterministic UUID-shaped UID.
func (c *Cluster) newUID() types.UID {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	c.uidSerial++
	return types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", c.uidSerial))
}

// APIServer is the reactor New prepends to cs, playing the API server's
// part in calls made through cs: it fills in what the server would on
// create and keeps the status on updates of the main resource. It changes
// the action's copy and lets the chain go on, so it composes with other
// reactors in any order; a reactor that ends the chain itself can call it
// first.
func (c *Cluster) APIServer(action clienttesting.Action) (bool, runtime.Object, error) {
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
func (c *Cluster) modify(gvr schema.GroupVersionResource, name string, f func(runtime.Object) bool) (runtime.Object, error) {
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

func (c *Cluster) modifyJob(name string, f func(*batchv1.Job) bool) (*batchv1.Job, error) {
	obj, err := c.modify(jobsGVR, name, func(o runtime.Object) bool { return f(o.(*batchv1.Job)) })
	if err != nil {
		return nil, err
	}
	return obj.(*batchv1.Job), nil
}

// ModifyPod applies f to the stored pod name and writes it back, for a
// test to show a state the simulator does not reach by itself (an image
// that cannot be pulled, say).
func (c *Cluster) ModifyPod(name string, f func(*corev1.Pod)) {
	_, err := c.modify(podsGVR, name, func(o runtime.Object) bool { f(o.(*corev1.Pod)); return true })
	if err != nil && !apierrors.IsNotFound(err) {
		c.t.Errorf("sim: update pod %s: %v", name, err)
	}
}

// syncAll syncs every stored Job.
func (c *Cluster) syncAll() {
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
func (c *Cluster) sync(name string) {
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
		return // held until RegisterPlan
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
			sj.startedAt = c.clk.Now()
		}
	})
	job = c.Job(name)
	if job == nil {
		return
	}
	if sj.startedAt.IsZero() && job.Status.StartTime != nil {
		sj.startedAt = job.Status.StartTime.Time // started before the simulator saw it
	}
	if ads := job.Spec.ActiveDeadlineSeconds; ads != nil && (sj.deadline == nil || resumed) {
		c.stopTimer(sj.deadline)
		end := sj.startedAt.Add(time.Duration(*ads) * time.Second)
		now := c.clk.Now()
		if !now.Before(end) {
			c.jobDeadline(sj)
			return
		}
		sj.deadline = c.after(end.Sub(now), func() { c.jobDeadline(sj) })
	}
	if sj.active == nil && sj.succeeded == 0 {
		c.createPod(job, sj, plan)
	}
}

// gone forgets a deleted Job: its pods are deleted and their tasks stopped.
func (c *Cluster) gone(name string) {
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
func (c *Cluster) deletePod(sj *simJob, p *simPod) {
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
func (c *Cluster) setJobStatus(name string, f func(*batchv1.JobStatus)) {
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
func (c *Cluster) createPod(job *batchv1.Job, sj *simJob, plan *backends.Plan) {
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
func (c *Cluster) startPod(sj *simJob, p *simPod, plan *backends.Plan) {
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
			c.ModifyPod(p.name, func(pod *corev1.Pod) {
				pod.Status.Conditions = []corev1.PodCondition{{
					Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
					Reason: corev1.PodReasonUnschedulable, Message: why, LastTransitionTime: now,
				}}
			})
			return
		}
	}
	p.waiting = false
	c.ModifyPod(p.name, func(pod *corev1.Pod) {
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

	// The task's context ends at the pod's deadline on the cluster's
	// clock, and when the pod is stopped.
	base, cancel := context.WithCancel(c.ctx)
	if ads := pod.Spec.ActiveDeadlineSeconds; ads != nil {
		start := c.clk.Now()
		p.deadline = start.Add(time.Duration(*ads) * time.Second)
		c.after(p.deadline.Sub(start), func() { c.podDeadline(sj, p) })
	}
	ctx, end := c.clk.Start(base, p.deadline)
	p.stop = cancel
	run := c.program(pod, sj, p, plan)
	c.tasks.Add(1)
	go func() {
		defer c.tasks.Done()
		defer cancel()
		r := run(ctx)
		at := c.clk.Now() // before end, which may let the clock skip ahead
		c.post(func() { c.podExited(sj, p, r, at) })
		end()
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
func (c *Cluster) program(pod *corev1.Pod, sj *simJob, p *simPod, plan *backends.Plan) func(context.Context) result {
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
		OnDemand: pod.Labels[LabelOnDemand] == "true" || strings.HasSuffix(sj.name, "-od")}
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
	var code ExitStatus
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
func (c *Cluster) podDeadline(sj *simJob, p *simPod) {
	if sj.active != p || c.jobs[sj.name] != sj {
		return
	}
	p.stop()
	c.podFailed(sj, p, result{exit: exitSIGTERM}, reasonPodDeadline, msgPodDeadline)
}

// podExited records how p's container ended, at time at.
func (c *Cluster) podExited(sj *simJob, p *simPod, r result, at time.Time) {
	if sj.active != p || c.jobs[sj.name] != sj {
		return // deleted, suspended or timed out meanwhile: discarded
	}
	if !p.deadline.IsZero() && !at.Before(p.deadline) {
		c.podDeadline(sj, p)
		return
	}
	if r.exit == 0 {
		c.podSucceeded(sj, p, r)
		return
	}
	if r.preempted {
		now := c.now()
		c.ModifyPod(p.name, func(pod *corev1.Pod) {
			pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
				Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
				Reason: corev1.PodReasonPreemptionByScheduler, Message: msgPreemption, LastTransitionTime: now,
			})
		})
	}
	c.podFailed(sj, p, r, "", "")
}

// terminate writes p's end: phase, container state, Ready=False.
func (c *Cluster) terminate(p *simPod, phase corev1.PodPhase, r result, reason, msg string) *corev1.Pod {
	now := c.now()
	var out *corev1.Pod
	c.ModifyPod(p.name, func(pod *corev1.Pod) {
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
// held, see HoldCompletions).
func (c *Cluster) podSucceeded(sj *simJob, p *simPod, r result) {
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

// HoldCompletions(true) leaves the Jobs whose pod succeeds from now on
// without SuccessCriteriaMet and Complete, as the real Job controller does
// for a while (it batches pod updates for a second, and its client is
// rate-limited); HoldCompletions(false) completes them.
func (c *Cluster) HoldCompletions(on bool) {
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
func (c *Cluster) complete(sj *simJob) {
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
func (c *Cluster) podFailed(sj *simJob, p *simPod, r result, reason, msg string) {
	pod := c.terminate(p, corev1.PodFailed, r, reason, msg)
	sj.active = nil
	job := c.Job(sj.name)
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
func (c *Cluster) failJob(sj *simJob, reason, msg string) {
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
func (c *Cluster) jobDeadline(sj *simJob) {
	if c.jobs[sj.name] != sj || sj.finished {
		return
	}
	job := c.Job(sj.name)
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

// Clock returns the cluster's clock.
func (c *Cluster) Clock() *simtime.Clock { return c.clk }
