package kubejob

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/kubeaccess"
	"github.com/sluice-ml/sluice/internal/naming"
)

var (
	_ backends.Submitter = (*Backend)(nil)
	_ backends.Watcher   = (*Backend)(nil)
	_ backends.Canceler  = (*Backend)(nil)
)

// Submit starts orchestrating a run of a, an artifact this Backend
// compiled, in this process, and returns the run id: opts.RunID, else
// Options.RunID, else "<pipeline>-<5 random characters>". Submitting a
// run id that exists in the cluster resumes that run (see "# Resuming" in
// the package doc); a run id taken by another pipeline, or by this one
// with other parameters, is an error. A task whose security override
// fails the Pod Security level the namespace enforces is an error before
// anything is created (when the namespace can be read). The
// ServiceAccount, Roles and RoleBindings of the steps with task.Access are
// made to match the compiled ones first (see "# Steps' API access" in the
// package doc); inside the in-cluster orchestrator's pod they are not
// touched, the submitter made them. The orchestrator
// keeps running in the background until the run is over, Cancel, or
// Close.
func (b *Backend) Submit(ctx context.Context, a backends.Artifact, opts *backends.SubmitOptions) (string, error) {
	art, ok := a.(*compiled)
	if !ok {
		return "", fmt.Errorf("kubejob: Submit needs an artifact this backend compiled, got %T", a)
	}
	client, ns, err := b.connect()
	if err != nil {
		return "", err
	}
	id, err := b.runIDFor(art, opts)
	if err != nil {
		return "", err
	}
	if running, err := b.orchestrating(id); running || err != nil {
		return id, err
	}
	if err := b.checkPodSecurity(ctx, client, ns, art); err != nil {
		return "", err
	}
	inPod := os.Getenv(EnvOrchestrator) != ""
	remote := b.opts.InCluster && !inPod
	if remote {
		if err := b.ensureRBAC(ctx, client, ns, art); err != nil {
			return "", err
		}
	}
	if !inPod {
		// The submitter makes the steps' accounts and rights, so the
		// in-cluster orchestrator needs no right to grant them.
		if err := kubeaccess.Ensure(ctx, client, "kubejob", art.objs.access.InNamespace(ns)); err != nil {
			return "", err
		}
	}
	o := newOrchestrator(client, ns, art.plan, id, art.templates(id), backends.TraceParent(ctx))
	o.observe = remote
	o.role = art.objs.role.Name
	if opts != nil {
		o.scheduled = opts.Scheduled
	}
	if b.clock != nil {
		o.clock = b.clock
	}
	// Registered before it starts, so that Close stops it while it does.
	if err := b.register(id, o); err != nil {
		return "", err
	}
	if err := o.start(ctx); err != nil {
		o.close()
		b.forget(id, o)
		return "", err
	}
	if remote {
		if err := b.createOrchestratorJob(ctx, client, ns, art, id, o); err != nil {
			o.close()
			b.forget(id, o)
			return "", err
		}
	}
	return id, nil
}

// runIDFor returns the run id to submit art with: the one opts or the
// Backend's Options ask for, else the pipeline's name and a random
// suffix; it must fit the names of the run's objects.
func (b *Backend) runIDFor(art *compiled, opts *backends.SubmitOptions) (string, error) {
	id := ""
	if opts != nil {
		id = opts.RunID
	}
	if id == "" {
		id = b.opts.RunID
	}
	if id == "" {
		id = naming.Fit(art.plan.Name, naming.MaxLabel-6) + "-" + randomSuffix()
	}
	if _, err := runID(art.plan.Name, id); err != nil {
		return "", err
	}
	if err := art.namesFor(id); err != nil {
		return "", err
	}
	return id, nil
}

// orchestrating reports whether this Backend orchestrates run id already,
// forgetting an orchestrator of it that ended.
func (b *Backend) orchestrating(id string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false, errClosed
	}
	if o := b.runs[id]; o != nil {
		if _, _, finished, fatal := o.snapshot(); !finished && fatal == nil {
			return true, nil
		}
		delete(b.runs, id)
	}
	return false, nil
}

// register makes o the orchestrator of run id, unless the Backend is
// closed.
func (b *Backend) register(id string, o *orchestrator) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		o.close()
		return errClosed
	}
	if b.runs == nil {
		b.runs = map[string]*orchestrator{}
	}
	b.runs[id] = o
	return nil
}

// createOrchestratorJob creates the Job that orchestrates run id in the
// cluster, owned by the run's record; one that exists counts as created.
func (b *Backend) createOrchestratorJob(ctx context.Context, client kubernetes.Interface, ns string, art *compiled, id string, o *orchestrator) error {
	j := (&compiler{b: b, plan: art.plan, runID: id}).orchestratorJob()
	j.Namespace = ns
	j.OwnerReferences = []metav1.OwnerReference{o.owner}
	if tp := backends.TraceParent(ctx); tp != "" {
		j.Spec.Template.Spec.Containers[0].Env = append(j.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: backends.TraceParentEnv, Value: tp})
	}
	err := kubepod.Retry(ctx, func() error {
		_, err := client.BatchV1().Jobs(ns).Create(ctx, j, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil // resumed, or a response lost on the way
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("kubejob: create the orchestrator Job %s: %w", j.Name, err)
	}
	return nil
}

// Watch follows a run this Backend submitted until it ends or ctx is done.
func (b *Backend) Watch(ctx context.Context, runID string, opts *backends.WatchOptions) (*backends.RunStatus, error) {
	o := b.run(runID)
	if o == nil {
		return nil, fmt.Errorf("kubejob: run %q was not submitted through this Backend; Submit it with that RunID to resume and watch it", runID)
	}
	var last *backends.RunStatus
	for {
		st, changed, finished, fatal := o.snapshot()
		if st != nil && st != last {
			last = st
			if opts != nil && opts.Progress != nil {
				opts.Progress(st.Clone())
			}
		}
		switch {
		case finished:
			return last.Clone(), nil
		case fatal != nil:
			return cloneOrNil(last), fatal
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return cloneOrNil(last), context.Cause(ctx)
		}
	}
}

func cloneOrNil(st *backends.RunStatus) *backends.RunStatus {
	if st == nil {
		return nil
	}
	return st.Clone()
}

// Cancel stops a run: it records the cancel in the run's record (so an
// orchestrator resumed later stops too), deletes the Jobs that are still
// running, with background propagation so their pods go with them, lets
// the exit handler run with the run's phase Canceled, and starts no other
// step. Watch returns once the exit handler has ended.
func (b *Backend) Cancel(ctx context.Context, runID string) error {
	o := b.run(runID)
	if o == nil {
		return fmt.Errorf("kubejob: run %q was not submitted through this Backend; Submit it with that RunID, then Cancel", runID)
	}
	if err := o.markCanceled(ctx); err != nil {
		return fmt.Errorf("kubejob: cancel run %s: %w", runID, err)
	}
	return nil
}

// errClosed is returned by Submit after Close.
var errClosed = errors.New("kubejob: Submit on a closed Backend")

// Close stops every orchestrator this Backend runs, leaving their runs as
// they are in the cluster: Jobs already created finish on their own, and
// Submit with the same run id (from another Backend or process) resumes
// each run where it stopped. Watch calls on those runs return an error,
// and so does Submit on this Backend from then on.
func (b *Backend) Close() error {
	b.mu.Lock()
	runs := b.runs
	b.runs, b.closed = nil, true
	b.mu.Unlock()
	for _, o := range runs {
		o.close()
	}
	return nil
}

// forget drops o, which failed to start, from the runs.
func (b *Backend) forget(id string, o *orchestrator) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.runs[id] == o {
		delete(b.runs, id)
	}
}

func (b *Backend) run(id string) *orchestrator {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runs[id]
}

// ensureRBAC creates the orchestrator's ServiceAccount, Role and
// RoleBinding where they are missing; existing ones are left as they are.
func (b *Backend) ensureRBAC(ctx context.Context, client kubernetes.Interface, ns string, art *compiled) error {
	sa, role, rb := art.objs.sa.DeepCopy(), art.objs.role.DeepCopy(), art.objs.rb.DeepCopy()
	sa.Namespace, role.Namespace, rb.Namespace = ns, ns, ns
	for i := range rb.Subjects {
		rb.Subjects[i].Namespace = ns
	}
	create := []func() error{
		func() error {
			_, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{})
			return err
		},
	}
	for i, f := range create {
		err := kubepod.Retry(ctx, func() error {
			if err := f(); err != nil && !apierrors.IsAlreadyExists(err) {
				return err
			}
			return nil
		})
		if err != nil {
			if apierrors.IsForbidden(err) {
				return fmt.Errorf("kubejob: create the orchestrator's %s: %w; creating the orchestrator's ServiceAccount, Role and RoleBinding %q "+
					"needs the right to create them in namespace %q (and to grant the Role's rules): have someone who may apply those three "+
					"from \"prog compile -backend kubejob\"", []string{"ServiceAccount", "Role", "RoleBinding"}[i], err, role.Name, ns)
			}
			return fmt.Errorf("kubejob: create the orchestrator's %s: %w", []string{"ServiceAccount", "Role", "RoleBinding"}[i], err)
		}
	}
	return nil
}

// randomSuffix returns 5 random lowercase alphanumerics, as the API server
// does for generateName.
func randomSuffix() string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	var b [5]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// namesFor checks that the step Jobs of run id have names that cannot
// collide.
func (a *compiled) namesFor(id string) error {
	_, errs := jobNames(id, a.plan.AllSteps())
	return backends.LintErrors(errs...)
}

// templates returns the compiled Jobs by step name, labelled for run id.
// They are the Jobs as compiled, after CompileOptions.BeforeEmit.
func (a *compiled) templates(id string) map[string]*batchv1.Job {
	out := make(map[string]*batchv1.Job, len(a.objs.jobs))
	for _, j := range a.objs.jobs {
		c := j.DeepCopy()
		c.Labels[LabelRun] = id
		if c.Spec.Template.Labels == nil {
			c.Spec.Template.Labels = map[string]string{}
		}
		c.Spec.Template.Labels[LabelRun] = id
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		out[c.Labels[LabelStep]] = c
	}
	return out
}
