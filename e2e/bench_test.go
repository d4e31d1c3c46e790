package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/e2e/internal/pipelines"
	"github.com/sluice-ml/sluice/pipeline"
)

// countingTransport counts the requests that write.
type countingTransport struct {
	rt     http.RoundTripper
	writes atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		c.writes.Add(1)
	}
	return c.rt.RoundTrip(r)
}

// jobTimes records when the test saw each Job of a namespace created,
// each Job's first pod created and its pod succeed, all through one
// informer factory, so the watch delays are the same for every event.
type jobTimes struct {
	mu           sync.Mutex
	created      map[string]time.Time
	podFirst     map[string]time.Time
	podSucceeded map[string]time.Time
}

func watchJobs(tb testing.TB, ctx context.Context, ns string) *jobTimes {
	jt := &jobTimes{created: map[string]time.Time{}, podFirst: map[string]time.Time{}, podSucceeded: map[string]time.Time{}}
	f := informers.NewSharedInformerFactoryWithOptions(cl.Client, 0, informers.WithNamespace(ns))
	onJob := func(o any) {
		j, ok := o.(*batchv1.Job)
		if !ok {
			return
		}
		now := time.Now()
		jt.mu.Lock()
		defer jt.mu.Unlock()
		if _, ok := jt.created[j.Name]; !ok {
			jt.created[j.Name] = now
		}
	}
	_, err := f.Batch().V1().Jobs().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onJob, UpdateFunc: func(_, o any) { onJob(o) },
	})
	require.NoError(tb, err)
	onPod := func(o any) {
		p, ok := o.(*corev1.Pod)
		if !ok {
			return
		}
		now := time.Now()
		jt.mu.Lock()
		defer jt.mu.Unlock()
		j := p.Labels["batch.kubernetes.io/job-name"]
		if j == "" {
			return
		}
		if _, ok := jt.podFirst[j]; !ok {
			jt.podFirst[j] = now
		}
		if _, ok := jt.podSucceeded[j]; !ok && p.Status.Phase == corev1.PodSucceeded {
			jt.podSucceeded[j] = now
		}
	}
	_, err = f.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onPod, UpdateFunc: func(_, o any) { onPod(o) },
	})
	require.NoError(tb, err)
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	tb.Cleanup(f.Shutdown)
	return jt
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s)) + 0.5)
	return s[min(max(i-1, 0), len(s)-1)]
}

// BenchmarkKubejobOrchestration runs a chain of trivial steps on kubejob
// and reports the orchestrator's hop — a step's pod seen Succeeded (the
// step is done then: its output is in the pod's status) → the next
// step's Job seen created — as p50/p95, against the baseline of
// Kubernetes' own Job controller on the same stack in the same run — a
// Job seen created → its pod seen created — and the orchestrator's API
// writes per step.
func BenchmarkKubejobOrchestration(b *testing.B) {
	if cl == nil {
		b.Skip(skipReason)
	}
	var hops, base []time.Duration
	var writes, steps int64
	for i := 0; b.Loop(); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		ns, _ := namespace(b, true)
		jt := watchJobs(b, ctx, ns)
		cfg := rest.CopyConfig(cl.Config)
		ct := &countingTransport{}
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { ct.rt = rt; return ct })
		cs, err := kubernetes.NewForConfig(cfg)
		require.NoError(b, err)
		kb := kubejob.New(cs, &kubejob.Options{Pod: kubepod.Options{Namespace: ns, Image: imageFor(b, "kubejob", pipelines.Chain)}, RunID: fmt.Sprintf("chain-%d", i)})
		st, err := pipeline.Run(ctx, pipelines.Build(pipelines.Chain), kb, nil)
		require.NoError(b, err, summary(st))
		_ = kb.Close()
		cancel()
		writes += ct.writes.Load()
		steps += pipelines.ChainLength
		jt.mu.Lock()
		for s := 1; s < pipelines.ChainLength; s++ {
			prev, next := fmt.Sprintf("chain-%d-c%02d", i, s-1), fmt.Sprintf("chain-%d-c%02d", i, s)
			hops = append(hops, jt.created[next].Sub(jt.podSucceeded[prev]))
		}
		for j, c := range jt.created {
			if p, ok := jt.podFirst[j]; ok {
				base = append(base, p.Sub(c))
			}
		}
		jt.mu.Unlock()
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	p50, p95 := percentile(hops, 0.5), percentile(hops, 0.95)
	b50, b95 := percentile(base, 0.5), percentile(base, 0.95)
	b.ReportMetric(ms(p50), "hop-p50-ms")
	b.ReportMetric(ms(p95), "hop-p95-ms")
	b.ReportMetric(ms(b50), "jobctl-p50-ms")
	b.ReportMetric(ms(b95), "jobctl-p95-ms")
	b.ReportMetric(float64(p50)/float64(b50), "p50-ratio")
	b.ReportMetric(float64(p95)/float64(b95), "p95-ratio")
	b.ReportMetric(float64(writes)/float64(steps), "writes/step")
}

// BenchmarkMakespan runs the same 200-step DAG (20 layers of 10) on
// kubejob and on the Argo controller, one after the other in each
// iteration, and reports both makespans and their ratio (goal ≤ 1).
func BenchmarkMakespan(b *testing.B) {
	if cl == nil {
		b.Skip(skipReason)
	}
	var took = map[string]time.Duration{}
	for b.Loop() {
		for _, backend := range clusterBackends {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
			ns, _ := namespace(b, true)
			be := clusterBackend(b, backend, ns, imageFor(b, backend, pipelines.DAG200))
			start := time.Now()
			st, err := pipeline.Run(ctx, pipelines.Build(pipelines.DAG200), be, nil)
			took[backend] += time.Since(start)
			cancel()
			require.NoError(b, err, summary(st))
		}
	}
	n := float64(b.N)
	b.ReportMetric(took["kubejob"].Seconds()/n, "kubejob-s")
	b.ReportMetric(took["argo"].Seconds()/n, "argo-s")
	b.ReportMetric(float64(took["kubejob"])/float64(took["argo"]), "kubejob/argo")
	b.ReportMetric(float64(cl.ControllerQPS()), "controller-qps")
}
