package kubejob_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// The benchmarks of issue 5: API calls per step and orchestration latency
// (a dependency's Job Complete -> the dependent's Job created), on the
// fake clientset and the simulated cluster of internal/kubesim.
//
//	go test ./backends/kubejob/ -run '^$' -bench . -benchtime 5x -count 3

// benchSteps is N, the number of steps (or fan-out instances) of each
// benchmark pipeline.
const benchSteps = 50

// chainPipeline is N steps, each depending on the one before: step c<i>
// outputs i.
func chainPipeline(name string, n int) *pipeline.Pipeline {
	p := pipeline.New(name, nil)
	prev := pipeline.Add(p, task.New("c0", func(context.Context, struct{}) (int, error) { return 0, nil }), struct{}{})
	for i := 1; i < n; i++ {
		prev = pipeline.Add(p, task.New("c"+strconv.Itoa(i), func(_ context.Context, in pipeline.Ref[int]) (int, error) {
			return in.Get() + 1, nil
		}), prev.Output())
	}
	return p
}

// widePipeline is N independent steps.
func widePipeline(name string, n int) *pipeline.Pipeline {
	p := pipeline.New(name, nil)
	for i := range n {
		pipeline.Add(p, task.New("w"+strconv.Itoa(i), func(context.Context, struct{}) (int, error) { return i, nil }), struct{}{})
	}
	return p
}

// fanOutPipeline is one step listing N items and a dynamic fan-out over
// them, at most limit instances at a time (0: all at once).
func fanOutPipeline(name string, n, limit int) *pipeline.Pipeline {
	p := pipeline.New(name, nil)
	items := pipeline.Add(p, task.New("items", func(context.Context, struct{}) ([]int, error) {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out, nil
	}), struct{}{})
	fan := pipeline.ForEach(p, task.New("inst", func(_ context.Context, in pipeline.Ref[int]) (int, error) {
		return in.Get() * 2, nil
	}), items.Output(), func(item pipeline.Ref[int]) pipeline.Ref[int] { return item })
	if limit > 0 {
		fan.Limit(limit)
	}
	return p
}

// apiCounter counts the API calls made through a fake clientset, by verb
// and resource. The simulator works on the tracker, so it is not counted.
type apiCounter struct {
	mu sync.Mutex
	n  map[string]int // "verb resource[/subresource]"
}

func countAPICalls(h *harness) *apiCounter {
	c := &apiCounter{n: map[string]int{}}
	h.cs.PrependReactor("*", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		c.add(a)
		return false, nil, nil
	})
	h.cs.PrependWatchReactor("*", func(a clienttesting.Action) (bool, watch.Interface, error) {
		c.add(a)
		return false, nil, nil
	})
	return c
}

func (c *apiCounter) add(a clienttesting.Action) {
	k := a.GetVerb() + " " + a.GetResource().Resource
	if s := a.GetSubresource(); s != "" {
		k += "/" + s
	}
	c.mu.Lock()
	c.n[k]++
	c.mu.Unlock()
}

// totals returns the writes (create, update, patch, delete,
// deletecollection) and reads (get, list, watch).
func (c *apiCounter) totals() (writes, reads int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.n {
		switch verb, _, _ := strings.Cut(k, " "); verb {
		case "create", "update", "patch", "delete", "delete-collection":
			writes += v
		case "get", "list", "watch":
			reads += v
		}
	}
	return writes, reads
}

func (c *apiCounter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range c.n {
			if !yield(k) {
				return
			}
		}
	})
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%d ", k, c.n[k])
	}
	return strings.TrimSpace(sb.String())
}

var (
	jobsGVR = batchv1.SchemeGroupVersion.WithResource("jobs")
	jobsGVK = batchv1.SchemeGroupVersion.WithKind("Job")
)

func storedJobs(b *testing.B, h *harness) int {
	list, err := h.cs.Tracker().List(jobsGVR, jobsGVK, "default")
	if err != nil {
		b.Fatal(err)
	}
	return len(list.(*batchv1.JobList).Items)
}

// BenchmarkAPIWritesPerStep runs pipelines of three shapes through
// pipeline.Run and reports the orchestrator's API calls per step (a step
// being one Job: each step of a chain or a wide DAG, the list step and
// each instance of a fan-out): writes/step and reads/step, with
// floor-writes/step, one create per Job plus the run record's, to
// compare with. dup-creates/step are creates of a Job already there
// (AlreadyExists).
func BenchmarkAPIWritesPerStep(b *testing.B) {
	defer goleak.VerifyNone(b, goleak.IgnoreCurrent())
	shapes := []struct {
		name string
		p    func(string) *pipeline.Pipeline
		jobs int
	}{
		{"chain", func(n string) *pipeline.Pipeline { return chainPipeline(n, benchSteps) }, benchSteps},
		{"wide", func(n string) *pipeline.Pipeline { return widePipeline(n, benchSteps) }, benchSteps},
		{"fanout", func(n string) *pipeline.Pipeline { return fanOutPipeline(n, benchSteps, 0) }, benchSteps + 1},
		{"fanout-limit5", func(n string) *pipeline.Pipeline { return fanOutPipeline(n, benchSteps, 5) }, benchSteps + 1},
	}
	for _, sh := range shapes {
		b.Run(fmt.Sprintf("%s-%d", sh.name, benchSteps), func(b *testing.B) {
			var writes, reads, jobCreates, jobs, runs int
			var last string
			for ; b.Loop(); runs++ {
				i := runs
				h := newHarness(b)
				calls := countAPICalls(h)
				be := h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "bench-" + strconv.Itoa(i)})
				ctx, cancel := context.WithTimeout(b.Context(), 60*time.Second)
				st, err := pipeline.Run(ctx, sh.p("bench-"+sh.name), be, nil)
				cancel()
				if err == nil && st.Phase != backends.PhaseSucceeded {
					err = fmt.Errorf("phase %s", st.Phase)
				}
				if n := storedJobs(b, h); err == nil && n != sh.jobs {
					err = fmt.Errorf("%d Jobs in the store, want %d", n, sh.jobs)
				}
				h.Close()
				if err != nil {
					b.Fatalf("run: %v", err)
				}
				w, r := calls.totals()
				writes += w
				reads += r
				calls.mu.Lock()
				jobCreates += calls.n["create jobs"]
				calls.mu.Unlock()
				jobs += sh.jobs
				last = calls.String()
			}
			b.ReportMetric(float64(writes)/float64(jobs), "writes/step")
			b.ReportMetric(float64(reads)/float64(jobs), "reads/step")
			b.ReportMetric(float64(jobs+runs)/float64(jobs), "floor-writes/step")
			b.ReportMetric(float64(jobCreates-jobs)/float64(jobs), "dup-creates/step")
			b.Logf("last run's calls (%d Jobs): %s", sh.jobs, last)
		})
	}
}

// hopRecorder records, for each step's Job (by its step label), when its
// first create call was issued through the clientset, when that call put
// the Job into the store, and, from a watch on the tracker (the API
// server's store, not an informer), when the Job first had Complete=True.
type hopRecorder struct {
	w        watch.Interface
	done     chan struct{}
	mu       sync.Mutex
	issued   map[string]time.Time // by step label
	stored   map[string]time.Time
	complete map[string]time.Time
	record   time.Time // the run record's create call
}

// recordHops installs the reactors; watch starts the tracker watch. The
// reactor on Job creates does what the rest of the chain would (the
// simulator's API-server defaults, then the fake's object reaction), so
// it can time the moment the Job is in the store: a watch would see it
// only when its goroutine next runs, which depends on what the creating
// goroutine does next.
func recordHops(h *harness) *hopRecorder {
	r := &hopRecorder{done: make(chan struct{}),
		issued: map[string]time.Time{}, stored: map[string]time.Time{}, complete: map[string]time.Time{}}
	store := clienttesting.ObjectReaction(h.cs.Tracker())
	h.cs.PrependReactor("create", "jobs", func(a clienttesting.Action) (bool, runtime.Object, error) {
		start := time.Now()
		j, ok := a.(clienttesting.CreateAction).GetObject().(*batchv1.Job)
		if !ok {
			return false, nil, nil
		}
		step := j.Labels[kubejob.LabelStep]
		h.cl.APIServer(a)
		handled, obj, err := store(a)
		end := time.Now()
		r.mu.Lock()
		if _, ok := r.issued[step]; !ok {
			r.issued[step] = start
		}
		if _, ok := r.stored[step]; !ok && err == nil {
			r.stored[step] = end
		}
		r.mu.Unlock()
		return handled, obj, err
	})
	h.cs.PrependReactor("create", "configmaps", func(a clienttesting.Action) (bool, runtime.Object, error) {
		now := time.Now()
		if m, ok := a.(clienttesting.CreateAction).GetObject().(*corev1.ConfigMap); ok && strings.HasPrefix(m.Name, "sluice-run-") {
			r.mu.Lock()
			if r.record.IsZero() {
				r.record = now
			}
			r.mu.Unlock()
		}
		return false, nil, nil
	})
	return r
}

// watch starts watching the tracker's Jobs for Complete. It is called
// once the controller under test has its informers running, so that the
// tracker, which sends an event to its watchers in the order they
// started, wakes this one last: the goroutine readied last runs first (it
// takes the P's runnext slot), which keeps the receipt of Complete close
// to the store's write, for the orchestrator and the baseline alike.
func (r *hopRecorder) watch(b *testing.B, h *harness) {
	w, err := h.cs.Tracker().Watch(jobsGVR, "default")
	if err != nil {
		b.Fatal(err)
	}
	r.w = w
	go func() {
		defer close(r.done)
		for ev := range w.ResultChan() {
			now := time.Now()
			j, ok := ev.Object.(*batchv1.Job)
			if !ok || ev.Type != watch.Modified || !jobComplete(j) {
				continue
			}
			r.mu.Lock()
			if _, ok := r.complete[j.Labels[kubejob.LabelStep]]; !ok {
				r.complete[j.Labels[kubejob.LabelStep]] = now
			}
			r.mu.Unlock()
		}
	}()
}

func (r *hopRecorder) stop() {
	if r.w != nil {
		r.w.Stop()
		<-r.done
	}
}

// hops returns, for a chain of n steps c0..c<n-1>, the time from each
// step's Job Complete to the next step's Job created (in the store), and
// to its create call issued. The first hop is left out when c0 completed
// before the watch started.
func (r *hopRecorder) hops(n int) (created, issued []time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i+1 < n; i++ {
		done, ok1 := r.complete["c"+strconv.Itoa(i)]
		if !ok1 && i == 0 {
			continue
		}
		next, ok2 := r.stored["c"+strconv.Itoa(i+1)]
		call, ok3 := r.issued["c"+strconv.Itoa(i+1)]
		if !ok1 || !ok2 || !ok3 {
			return nil, nil, fmt.Errorf("hop %d: complete seen %v, next stored %v, next create issued %v", i, ok1, ok2, ok3)
		}
		created = append(created, next.Sub(done))
		issued = append(issued, call.Sub(done))
	}
	return created, issued, nil
}

func jobComplete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// orchestratedChain runs a chain of n steps through the orchestrator on a
// new harness and returns its hops. Also returned: startup, from the run record's create call to the first
// Job's.
func orchestratedChain(b *testing.B, n int) (created, issued []time.Duration, startup time.Duration) {
	h := newHarness(b)
	defer h.Close()
	rec := recordHops(h)
	be := h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "lat-orch"})
	ctx, cancel := context.WithTimeout(b.Context(), 60*time.Second)
	defer cancel()
	// pipeline.Run, in its three parts, to start the watch in between.
	art, err := pipeline.Compile(ctx, chainPipeline("lat", n), be, nil)
	if err != nil {
		b.Fatal(err)
	}
	id, err := be.Submit(ctx, art, &backends.SubmitOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rec.watch(b, h)
	st, err := be.Watch(ctx, id, &backends.WatchOptions{})
	rec.stop()
	if err != nil {
		b.Fatalf("orchestrator: %v", err)
	}
	if st.Phase != backends.PhaseSucceeded {
		b.Fatalf("orchestrator: phase %s", st.Phase)
	}
	created, issued, err = rec.hops(n)
	if err != nil {
		b.Fatalf("orchestrator: %v", err)
	}
	rec.mu.Lock()
	startup = rec.issued["c0"].Sub(rec.record)
	rec.mu.Unlock()
	return created, issued, startup
}

// informerChain runs the same chain with the least a controller can do: a
// Job informer from the same informer factory on the same fake clientset
// whose update handler, on seeing step i's Job Complete, creates step
// i+1's Job (the compiled template with the input filled in). It returns
// its hops: informer delivery plus one create call, the floor of any
// informer-driven orchestrator.
func informerChain(b *testing.B, n int) (created, issued []time.Duration) {
	h := newHarness(b)
	defer h.Close()
	const run = "lat-base"
	sb := h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: run})
	ctx, cancel := context.WithTimeout(b.Context(), 60*time.Second)
	defer cancel()
	art, err := pipeline.Compile(ctx, chainPipeline("lat", n), sb, nil) // registers the plan with the simulator
	if err != nil {
		b.Fatal(err)
	}
	var tmpl []*batchv1.Job
	if !art.As(&tmpl) || len(tmpl) != n {
		b.Fatalf("baseline: %d Job templates, want %d", len(tmpl), n)
	}
	jobs := make([]*batchv1.Job, n)
	for _, t := range tmpl {
		i, err := strconv.Atoi(strings.TrimPrefix(t.Labels[kubejob.LabelStep], "c"))
		if err != nil {
			b.Fatal(err)
		}
		j := t.DeepCopy()
		j.Namespace = "default"
		j.Spec.Suspend = nil // as the orchestrator creates it from the template
		if i > 0 {           // step c<i>'s input is c<i-1>'s output, i-1
			args := j.Spec.Template.Spec.Containers[0].Args
			k := slices.Index(args, "-input")
			args[k+1] = strconv.Itoa(i - 1)
		}
		jobs[i] = j
	}

	rec := recordHops(h)
	factory := informers.NewSharedInformerFactoryWithOptions(h.cs, 0,
		informers.WithNamespace("default"),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = kubejob.LabelRun + "=" + run }))
	inf := factory.Batch().V1().Jobs().Informer()
	finished := make(chan struct{})
	failed := make(chan error, 1)
	made := make([]bool, n)
	var once sync.Once
	create := func(i int) {
		if _, err := h.cs.BatchV1().Jobs("default").Create(ctx, jobs[i], metav1.CreateOptions{}); err != nil {
			select {
			case failed <- err:
			default:
			}
		}
	}
	_, err = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { // handlers run one at a time
			j := obj.(*batchv1.Job)
			if !jobComplete(j) {
				if terminalFailed(j) {
					select {
					case failed <- fmt.Errorf("Job %s failed", j.Name):
					default:
					}
				}
				return
			}
			i, _ := strconv.Atoi(strings.TrimPrefix(j.Labels[kubejob.LabelStep], "c"))
			switch {
			case i == n-1:
				once.Do(func() { close(finished) })
			case !made[i+1]:
				made[i+1] = true
				create(i + 1)
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	rec.watch(b, h)
	made[0] = true
	create(0)
	select {
	case <-finished:
	case err = <-failed:
	case <-ctx.Done():
		err = ctx.Err()
	}
	close(stop)
	factory.Shutdown()
	rec.stop()
	if err != nil {
		b.Fatalf("baseline: %v", err)
	}
	created, issued, err = rec.hops(n)
	if err != nil {
		b.Fatalf("baseline: %v", err)
	}
	return created, issued
}

func terminalFailed(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// latencyStats returns p50, p95 and the mean, in µs.
func latencyStats(d []time.Duration) (p50, p95, mean float64) {
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	us := func(x time.Duration) float64 { return float64(x) / float64(time.Microsecond) }
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return us(at(0.50)), us(at(0.95)), us(sum) / float64(len(s))
}

// BenchmarkOrchestrationLatency measures, over a chain of N steps, the
// hop from a step's Job becoming Complete in the API server's store to
// the next step's Job being created there, for the orchestrator and, in
// the same benchmark, for the informer baseline of informerChain.
// Iterations alternate: even ones run the orchestrator's chain, odd ones
// the baseline's (with b.N = 1, both); ns/op is the time of one chain,
// harness included. Use an even -benchtime count (e.g. 10x) so both get
// as many chains.
//
// Reported, in µs: p50, p95 and mean of the hop for the orchestrator and
// (base-) the baseline, and the orchestrator's ratios to the baseline.
// The hop has two parts: decide, from Complete to the create call issued
// (the controller's own work: informer delivery, and for the orchestrator
// its queue and reconcile pass), and store, from the create call issued
// to the Job in the store (the fake clientset's cost of a create, which
// the orchestrator and the baseline share). The receipt of Complete may
// lag the store's write by goroutine scheduling, which makes both decide
// figures low by about as much. startup-ms is the orchestrator's mean time
// from its run record's create call to its first Job's.
func BenchmarkOrchestrationLatency(b *testing.B) {
	defer goleak.VerifyNone(b, goleak.IgnoreCurrent())
	var orch, base, orchDecide, baseDecide, startup []time.Duration
	for i := range b.N {
		if i%2 == 0 {
			hop, decide, st := orchestratedChain(b, benchSteps)
			orch, orchDecide = append(orch, hop...), append(orchDecide, decide...)
			startup = append(startup, st)
		}
		if i%2 == 1 || b.N == 1 {
			hop, decide := informerChain(b, benchSteps)
			base, baseDecide = append(base, hop...), append(baseDecide, decide...)
		}
	}
	store := func(hop, decide []time.Duration) []time.Duration {
		out := make([]time.Duration, len(hop))
		for i := range hop {
			out[i] = hop[i] - decide[i]
		}
		return out
	}
	op50, op95, omean := latencyStats(orch)
	bp50, bp95, bmean := latencyStats(base)
	od50, od95, _ := latencyStats(orchDecide)
	bd50, bd95, _ := latencyStats(baseDecide)
	os50, _, _ := latencyStats(store(orch, orchDecide))
	bs50, _, _ := latencyStats(store(base, baseDecide))
	_, _, smean := latencyStats(startup)
	b.ReportMetric(op50, "p50-µs")
	b.ReportMetric(op95, "p95-µs")
	b.ReportMetric(omean, "mean-µs")
	b.ReportMetric(bp50, "base-p50-µs")
	b.ReportMetric(bp95, "base-p95-µs")
	b.ReportMetric(bmean, "base-mean-µs")
	b.ReportMetric(op50/bp50, "p50-ratio")
	b.ReportMetric(op95/bp95, "p95-ratio")
	b.ReportMetric(omean/bmean, "mean-ratio")
	b.ReportMetric(od50, "decide-p50-µs")
	b.ReportMetric(od95, "decide-p95-µs")
	b.ReportMetric(bd50, "base-decide-p50-µs")
	b.ReportMetric(bd95, "base-decide-p95-µs")
	b.ReportMetric(od50/bd50, "decide-p50-ratio")
	b.ReportMetric(os50, "store-p50-µs")
	b.ReportMetric(bs50, "base-store-p50-µs")
	b.ReportMetric(smean/1000, "startup-ms")
	b.Logf("b.N=%d: %d orchestrator hops, %d baseline hops", b.N, len(orch), len(base))
}
