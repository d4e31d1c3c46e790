package serve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	k8sschema "k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// FieldManager is the field manager of every object a rollout applies
// (server-side apply): the fields Sluice sets are Sluice's, and a
// person's kubectl edits of other fields survive the next rollout.
const FieldManager = "sluice"

// DefaultRolloutTimeout bounds how long a rollout waits for its objects
// to be ready before it rolls back.
const DefaultRolloutTimeout = 10 * time.Minute

// Applier rolls objects out to a cluster: it applies them with
// server-side apply, waits through watches until they are ready, and
// when they are not — a pod that cannot pull its image or keeps
// crashing, or the timeout — restores the objects that were live
// before and reports why.
type Applier struct {
	// Client and Mapper reach the cluster.
	Client dynamic.Interface
	Mapper meta.RESTMapper
	// Timeout bounds the wait for readiness; zero means
	// DefaultRolloutTimeout.
	Timeout time.Duration
	// Progress, when set, is told what the rollout waits for, as it
	// changes.
	Progress func(msg string)
}

// RolloutError is a rollout that failed: why, and whether the objects
// live before it were restored.
type RolloutError struct {
	// Reason is a short cause: ImagePullBackOff, CrashLoopBackOff,
	// Unschedulable, ProgressDeadlineExceeded, Timeout, ….
	Reason string
	// Message says what was seen, naming the object and pod.
	Message string
	// RolledBack says whether the previous objects were restored (or,
	// for a first rollout, the new ones removed).
	RolledBack bool
	// RollbackErr is why restoring them failed, if it did.
	RollbackErr error
}

func (e *RolloutError) Error() string {
	s := fmt.Sprintf("rollout failed: %s: %s", e.Reason, e.Message)
	switch {
	case e.RollbackErr != nil:
		s += fmt.Sprintf("; rolling back failed too: %v", e.RollbackErr)
	case e.RolledBack:
		s += "; rolled back to the previous version"
	}
	return s
}

// Rollout applies objs, waits until they are ready, and on failure
// restores previous (the objects of the version live before, nil for a
// first rollout): it applies them again, deletes the objects of objs
// that previous does not have, and waits for them. It returns nil, or a
// *RolloutError.
func (a *Applier) Rollout(ctx context.Context, objs, previous []*unstructured.Unstructured) error {
	err := a.applyAndWait(ctx, objs)
	if err == nil {
		return nil
	}
	var re *RolloutError
	if !errors.As(err, &re) {
		re = &RolloutError{Reason: "ApplyFailed", Message: err.Error()}
	}
	if ctx.Err() != nil {
		// Canceled: restore what was live, with a context of its own.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), a.timeout())
		defer cancel()
	}
	a.progress("rolling back: " + re.Reason)
	if rerr := a.restore(ctx, objs, previous); rerr != nil {
		re.RollbackErr = rerr
	} else {
		re.RolledBack = true
	}
	return re
}

func (a *Applier) timeout() time.Duration {
	if a.Timeout > 0 {
		return a.Timeout
	}
	return DefaultRolloutTimeout
}

func (a *Applier) progress(msg string) {
	if a.Progress != nil {
		a.Progress(msg)
	}
}

// restore applies previous and deletes what objs added.
func (a *Applier) restore(ctx context.Context, objs, previous []*unstructured.Unstructured) error {
	keep := map[string]bool{}
	for _, o := range previous {
		keep[objKey(o)] = true
	}
	var errs []error
	for _, o := range slices.Backward(objs) {
		if keep[objKey(o)] {
			continue
		}
		ri, err := a.resource(o)
		if err == nil {
			err = ri.Delete(ctx, o.GetName(), metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
		}
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", objKey(o), err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if len(previous) == 0 {
		return nil
	}
	if err := a.applyAndWait(ctx, previous); err != nil {
		return fmt.Errorf("restoring the previous objects: %w", err)
	}
	return nil
}

func objKey(o *unstructured.Unstructured) string {
	return o.GroupVersionKind().GroupKind().String() + " " + o.GetNamespace() + "/" + o.GetName()
}

// resource returns the client of o's resource.
func (a *Applier) resource(o *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := o.GroupVersionKind()
	m, err := a.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: the cluster does not serve %s (is its CRD installed?): %w", objKey(o), gvk, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.Client.Resource(m.Resource).Namespace(o.GetNamespace()), nil
	}
	return a.Client.Resource(m.Resource), nil
}

func (a *Applier) gvr(o *unstructured.Unstructured) (k8sschema.GroupVersionResource, error) {
	gvk := o.GroupVersionKind()
	m, err := a.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return k8sschema.GroupVersionResource{}, err
	}
	return m.Resource, nil
}

// apply applies each object with server-side apply, in order, and
// returns them as the server has them (their generations).
func (a *Applier) apply(ctx context.Context, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		ri, err := a.resource(o)
		if err != nil {
			return nil, err
		}
		data, err := o.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", objKey(o), err)
		}
		got, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: ptr.To(true)})
		if err != nil {
			return nil, fmt.Errorf("apply %s: %w", objKey(o), err)
		}
		out = append(out, got)
	}
	return out, nil
}

// applyAndWait applies objs and waits until every one is ready.
func (a *Applier) applyAndWait(ctx context.Context, objs []*unstructured.Unstructured) error {
	applied, err := a.apply(ctx, objs)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout())
	defer cancel()
	w := &waiter{a: a, changed: make(chan struct{}, 1)}
	defer w.stop()
	for _, o := range applied {
		if err := w.watch(ctx, o); err != nil {
			return err
		}
	}
	last := ""
	for {
		st := w.state()
		if st.failed != nil {
			return st.failed
		}
		if st.waiting == "" {
			a.progress("ready")
			return nil
		}
		if st.waiting != last {
			a.progress(st.waiting)
			last = st.waiting
		}
		select {
		case <-w.changed:
		case <-ctx.Done():
			reason, msg := "Timeout", fmt.Sprintf("not ready after %v: %s", a.timeout(), st.waiting)
			if st.reason != "" {
				reason = st.reason
			}
			return &RolloutError{Reason: reason, Message: msg}
		}
	}
}

// waiter watches the objects of a rollout (and the pods of its
// Deployments) and judges their readiness.
type waiter struct {
	a       *Applier
	changed chan struct{}
	stops   []chan struct{}
	wg      sync.WaitGroup
	objs    []watched
}

type watched struct {
	obj   *unstructured.Unstructured // as applied
	store cache.Store                // the object, as the watch shows it
	pods  cache.Store                // a Deployment's pods (or a raw InferenceService's)
	sets  cache.Store                // a Deployment's ReplicaSets (or a raw InferenceService's)
	// For an InferenceService in RawDeployment mode: the Deployments
	// KServe makes of it, and the names of those to wait for.
	deps       cache.Store
	components []string
}

// kserveLabel is the label KServe puts on the objects and pods it makes
// of an InferenceService.
const kserveLabel = "serving.kserve.io/inferenceservice"

func (w *waiter) poke() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *waiter) stop() {
	for _, s := range w.stops {
		close(s)
	}
	w.wg.Wait()
}

// inform starts an informer of gvr in ns, filtered by tweak, and waits
// for its first list.
func (w *waiter) inform(ctx context.Context, gvr k8sschema.GroupVersionResource, ns string, tweak dynamicinformer.TweakListOptionsFunc) (cache.Store, error) {
	// An informer retries a list it may not make until the timeout; one
	// list first says at once why it cannot (RBAC, a missing CRD).
	probe := metav1.ListOptions{Limit: 1}
	tweak(&probe)
	if _, err := w.a.Client.Resource(gvr).Namespace(ns).List(ctx, probe); err != nil {
		return nil, fmt.Errorf("watching %s in %s: %w", gvr.Resource, ns, err)
	}
	inf := dynamicinformer.NewFilteredDynamicInformer(w.a.Client, gvr, ns, 0, cache.Indexers{}, tweak).Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.poke() },
		UpdateFunc: func(any, any) { w.poke() },
		DeleteFunc: func(any) { w.poke() },
	}); err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	w.stops = append(w.stops, stop)
	w.wg.Go(func() { inf.Run(stop) })
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("watching %s in %s: %w", gvr.Resource, ns, context.Cause(ctx))
	}
	return inf.GetStore(), nil
}

func (w *waiter) watch(ctx context.Context, o *unstructured.Unstructured) error {
	if !waitsFor(o) {
		return nil
	}
	gvr, err := w.a.gvr(o)
	if err != nil {
		return err
	}
	byName := func(lo *metav1.ListOptions) {
		lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", o.GetName()).String()
	}
	st, err := w.inform(ctx, gvr, o.GetNamespace(), byName)
	if err != nil {
		return err
	}
	wd := watched{obj: o, store: st}
	if o.GetKind() == "Deployment" {
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
			return err
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return fmt.Errorf("%s: selector: %w", objKey(o), err)
		}
		bySel := func(lo *metav1.ListOptions) { lo.LabelSelector = sel.String() }
		if wd.pods, err = w.inform(ctx, corev1.SchemeGroupVersion.WithResource("pods"), o.GetNamespace(), bySel); err != nil {
			return err
		}
		if wd.sets, err = w.inform(ctx, appsv1.SchemeGroupVersion.WithResource("replicasets"), o.GetNamespace(), bySel); err != nil {
			return err
		}
	}
	if o.GetKind() == "InferenceService" && o.GetAnnotations()[AnnotationDeploymentMode] == string(RawDeployment) {
		// KServe's Ready condition follows its Deployments' Available
		// one, which an old version keeps while a new one cannot start
		// (maxUnavailable 0): the rollout also waits for the Deployments
		// of the new version, as for its own.
		byISVC := func(lo *metav1.ListOptions) { lo.LabelSelector = kserveLabel + "=" + o.GetName() }
		apps := appsv1.SchemeGroupVersion
		if wd.deps, err = w.inform(ctx, apps.WithResource("deployments"), o.GetNamespace(), byISVC); err != nil {
			return err
		}
		if wd.pods, err = w.inform(ctx, corev1.SchemeGroupVersion.WithResource("pods"), o.GetNamespace(), byISVC); err != nil {
			return err
		}
		if wd.sets, err = w.inform(ctx, apps.WithResource("replicasets"), o.GetNamespace(), byISVC); err != nil {
			return err
		}
		for _, c := range []string{"predictor", "transformer"} {
			if _, ok, _ := unstructured.NestedMap(o.Object, "spec", c); ok {
				wd.components = append(wd.components, o.GetName()+"-"+c)
			}
		}
	}
	w.objs = append(w.objs, wd)
	return nil
}

// rawState judges the Deployments KServe makes of a RawDeployment
// InferenceService isvc, as applied: each must exist with isvc's model
// and be rolled out. A failure of theirs is the rollout's.
func (wd watched) rawState(isvc objState) objState {
	model := wd.obj.GetAnnotations()[AnnotationModelURI]
	var waits []string
	for _, name := range wd.components {
		item, ok, _ := wd.deps.GetByKey(wd.obj.GetNamespace() + "/" + name)
		if !ok {
			waits = append(waits, "KServe has not made Deployment "+name+" yet")
			continue
		}
		d := item.(*unstructured.Unstructured)
		tmpl, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "annotations")
		if model != "" && tmpl[AnnotationModelURI] != model {
			waits = append(waits, "KServe has not updated Deployment "+name+" yet")
			continue
		}
		s := deploymentState(d, wd.sets, wd.pods)
		if s.fail != "" {
			s.msg = "Deployment " + name + ": " + s.msg
			return s
		}
		if !s.ready {
			waits = append(waits, "Deployment "+name+": "+s.msg)
			isvc.reason = cmpOr(isvc.reason, s.reason)
		}
	}
	if isvc.fail != "" || (isvc.ready && len(waits) == 0) {
		return isvc
	}
	if !isvc.ready {
		waits = append([]string{isvc.msg}, waits...)
	}
	return objState{msg: strings.Join(waits, "; "), reason: isvc.reason}
}

// waitsFor reports whether a rollout waits for o to become ready: the
// kinds that run pods. Services, autoscalers, budgets and routes are
// ready once applied.
func waitsFor(o *unstructured.Unstructured) bool {
	gvk := o.GroupVersionKind()
	return (gvk.Group == "apps" && gvk.Kind == "Deployment") || (gvk.Group == "serving.kserve.io" && gvk.Kind == "InferenceService")
}

// rolloutState is what the objects show: a failure that will not mend,
// else what is still awaited ("" when all are ready), and the reason of
// the wait that a timeout would report.
type rolloutState struct {
	failed  *RolloutError
	waiting string
	reason  string
}

func (w *waiter) state() rolloutState {
	var st rolloutState
	var waits []string
	for _, wd := range w.objs {
		item, ok, err := wd.store.GetByKey(cacheKey(wd.obj))
		if err != nil || !ok {
			waits = append(waits, objKey(wd.obj)+": not seen yet")
			continue
		}
		cur := item.(*unstructured.Unstructured)
		var s objState
		if wd.obj.GetKind() == "Deployment" {
			s = deploymentState(cur, wd.sets, wd.pods)
		} else {
			s = inferenceServiceState(cur)
			if wd.deps != nil {
				s = wd.rawState(s)
			}
		}
		if s.fail != "" {
			st.failed = &RolloutError{Reason: s.fail, Message: objKey(wd.obj) + ": " + s.msg}
			return st
		}
		if !s.ready {
			waits = append(waits, objKey(wd.obj)+": "+s.msg)
			if st.reason == "" {
				st.reason = s.reason
			}
		}
	}
	st.waiting = strings.Join(waits, "; ")
	return st
}

func cacheKey(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}

type objState struct {
	ready  bool
	msg    string
	fail   string // a reason that fails the rollout now
	reason string // the reason of the wait, for a timeout
}

// podFailures are the waiting reasons that do not mend by waiting.
var podFailures = []string{"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError", "RunContainerError"}

// revisionAnnotation is the Deployment controller's revision of a
// Deployment and of its ReplicaSets.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// currentHash returns the pod-template-hash of d's ReplicaSet of its
// current revision, or "" when the controller has not made it yet.
func currentHash(d *appsv1.Deployment, sets cache.Store) string {
	rev := d.Annotations[revisionAnnotation]
	if rev == "" || sets == nil {
		return ""
	}
	for _, item := range sets.List() {
		rs := item.(*unstructured.Unstructured)
		if rs.GetAnnotations()[revisionAnnotation] != rev {
			continue
		}
		for _, ref := range rs.GetOwnerReferences() {
			if ref.UID == d.UID {
				return rs.GetLabels()[appsv1.DefaultDeploymentUniqueLabelKey]
			}
		}
	}
	return ""
}

// deploymentState judges a Deployment as kubectl rollout status does:
// the controller saw the latest spec, every replica runs it, they are
// available, and no older replica is left; and the pods of its current
// ReplicaSet for reasons (those of older ones, a failed version's being
// replaced, say nothing of this one).
func deploymentState(u *unstructured.Unstructured, sets, pods cache.Store) objState {
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
		return objState{fail: "Invalid", msg: err.Error()}
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return objState{fail: "ProgressDeadlineExceeded", msg: c.Message}
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	var why, reason string
	if hash := currentHash(&d, sets); hash != "" && pods != nil && d.Status.ObservedGeneration >= d.Generation {
		sel, _ := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		for _, item := range pods.List() {
			var p corev1.Pod
			pu := item.(*unstructured.Unstructured)
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(pu.Object, &p); err != nil || !sel.Matches(labels.Set(p.Labels)) ||
				p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash || p.DeletionTimestamp != nil {
				continue
			}
			for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
				if w := cs.State.Waiting; w != nil && slices.Contains(podFailures, w.Reason) {
					msg := fmt.Sprintf("pod %s: container %s: %s", p.Name, cs.Name, w.Reason)
					if w.Message != "" {
						msg += ": " + w.Message
					}
					return objState{fail: w.Reason, msg: msg}
				}
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && why == "" {
					why, reason = fmt.Sprintf("pod %s: Unschedulable: %s", p.Name, c.Message), "Unschedulable"
				}
			}
		}
	}
	s := d.Status
	var msg string
	switch {
	case s.ObservedGeneration < d.Generation:
		msg = "waiting for the controller to see the new spec"
	case s.UpdatedReplicas < want:
		msg = fmt.Sprintf("%d of %d replicas updated", s.UpdatedReplicas, want)
	case s.Replicas > s.UpdatedReplicas:
		msg = fmt.Sprintf("%d old replicas left", s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < s.UpdatedReplicas:
		msg = fmt.Sprintf("%d of %d updated replicas available", s.AvailableReplicas, s.UpdatedReplicas)
	default:
		return objState{ready: true}
	}
	if why != "" {
		msg += "; " + why
	}
	return objState{msg: msg, reason: reason}
}

// inferenceServiceState judges a KServe InferenceService: ready when its
// Ready condition is True for the latest generation; failed at once when
// a condition that is False names a pod failure (ImagePullBackOff, …).
func inferenceServiceState(u *unstructured.Unstructured) objState {
	gen := u.GetGeneration()
	if og, ok, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); ok && og < gen {
		return objState{msg: "waiting for the controller to see the new spec"}
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var notReady []string
	for _, c := range conds {
		m, _ := c.(map[string]any)
		typ, _ := m["type"].(string)
		status, _ := m["status"].(string)
		if typ == "Ready" && status == "True" {
			return objState{ready: true}
		}
		if status == "False" {
			reason, _ := m["reason"].(string)
			msg, _ := m["message"].(string)
			notReady = append(notReady, strings.TrimSpace(fmt.Sprintf("%s: %s %s", typ, reason, msg)))
		}
	}
	if len(notReady) == 0 {
		return objState{msg: "not Ready yet"}
	}
	msg := strings.Join(notReady, "; ")
	// KServe passes its pods' failures on in its conditions' messages
	// (Knative's "Revision … failed: ImagePullBackOff"): those do not
	// mend by waiting, as on a Deployment's pods.
	for _, f := range podFailures {
		if strings.Contains(msg, f) {
			return objState{fail: f, msg: msg}
		}
	}
	return objState{msg: msg}
}
