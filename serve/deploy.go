package serve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// Candidate is a model a deploy step may roll out: the model artifact an
// upstream step wrote and the numbers it measured. An evaluation step
// returns one.
type Candidate struct {
	Model   artifact.Model     `json:"model"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Note says what changed, for people: the release's change note.
	Note string `json:"note,omitempty"`
}

// DeployOptions tune [Deploy]. The zero value deploys every candidate.
type DeployOptions struct {
	// Name is the step's name; default "deploy-TARGET-LEVEL".
	Name string
	// Model is the name the candidate is registered under; default the
	// target's name.
	Model string
	// Gate decides whether the candidate replaces the live version.
	Gate Gate
	// Timeout bounds the rollout; zero means DefaultRolloutTimeout.
	Timeout time.Duration
	// Kubeconfig is the cluster a run on the local backend deploys to.
	// Empty: a local run serves the model in its own process (the local
	// target), whatever the target's platform. A step in a pod always
	// deploys to the cluster it runs in.
	Kubeconfig string
	// Predictor names the registered Go predictor ([Register]) that the
	// local target serves with; empty means the only one registered.
	Predictor string
	// LocalOnly makes the step a local target only: it serves the model
	// in process on the local backend and does nothing in a pod (its
	// Decision says so), so it needs no rights in any cluster. For demos
	// and pipelines whose cluster runs deploy elsewhere.
	LocalOnly bool
	// Resources are the deploy step's own; default DefaultDeployResources.
	Resources *resources.Profile
	// Registry, when set, is where models and releases are recorded
	// instead of the run's artifact store (NewRegistry): another
	// registry behind the Registry interface. It is used where the step
	// runs, in its pod too, so it must work there.
	Registry Registry
}

// DefaultDeployResources is a deploy step's default request: it waits
// on watches and applies a handful of objects.
var DefaultDeployResources = resources.Profile{CPU: "100m", Memory: "256Mi"}

// Deployed is a deploy step's output: what the gate decided, the
// candidate's registered version, and, when it went out, the release
// and where the model is served.
type Deployed struct {
	Target    string       `json:"target"`
	Level     Level        `json:"level"`
	Namespace string       `json:"namespace,omitempty"`
	Decision  Decision     `json:"decision"`
	Version   ModelVersion `json:"version"`
	// Serving is the version the endpoint serves: Version when it was
	// deployed, else the live one (none when nothing is live).
	Serving *ModelVersion `json:"serving,omitempty"`
	// Release is the new release; nil when the gate kept the live one.
	Release *Release `json:"release,omitempty"`
	// Endpoint is the base URL of the served model: http://127.0.0.1:PORT
	// for the local target, the Service's cluster URL or the
	// InferenceService's URL on a cluster; empty when nothing was
	// deployed.
	Endpoint string `json:"endpoint,omitempty"`
	// Local says that the model is served by this process.
	Local bool `json:"local,omitempty"`
}

// Deploy adds to p a step that rolls candidate out to t, when the gate
// lets it: it registers the candidate in the model registry (in the
// run's artifact store), compares it with the version live at t's level,
// and if it is better applies t's objects with server-side apply, waits
// for the rollout through watches, records the release, and on failure
// restores the version before and fails with the reason (ImagePullBackOff,
// Unschedulable, …). Run again with a version that is live already, it
// changes nothing. On the local backend it serves the model in process
// on 127.0.0.1 instead (see DeployOptions.Kubeconfig). The step's pod
// gets a ServiceAccount with exactly the rights it needs (task.Access):
// compile emits it.
//
// The target and gate are checked by the pipeline's Validate, at
// pipeline.tasks[NAME].target and .gate.
func Deploy(p *pipeline.Pipeline, t Target, candidate pipeline.Ref[Candidate], opts *DeployOptions) pipeline.Step[Deployed] {
	d := &deployer{t: t}
	if opts != nil {
		d.o = *opts
	}
	if d.o.Name == "" {
		d.o.Name = "deploy-" + t.Name + "-" + string(t.Level)
	}
	if d.o.Model == "" {
		d.o.Model = t.Name
	}
	return d.add(p, candidate, nil)
}

func (d *deployer) add(p *pipeline.Pipeline, candidate pipeline.Ref[Candidate], after []pipeline.Dependency) pipeline.Step[Deployed] {
	res := DefaultDeployResources
	if d.o.Resources != nil {
		res = *d.o.Resources
	}
	tk := task.New(d.o.Name, d.run).WithResources(res)
	if access, err := d.access(); err == nil && len(access) > 0 && !d.o.LocalOnly {
		tk = tk.WithAccess(access...)
	}
	s := pipeline.Add(p, tk, deployIn{Candidate: candidate}).Check(d.check).Summarize(summarizeDeployed)
	if len(after) > 0 {
		s = s.After(after...)
	}
	return s
}

// Promote adds to p a step that rolls out to t the model version live at
// level from of the target of the same name — the same registered
// version, not a new one: dev → staging → prod. The gate compares it
// with what is live at t's level, as Deploy's does; its output and
// summary are Deploy's. It runs after the steps in after (typically the
// deploy step of the lower level).
func Promote(p *pipeline.Pipeline, t Target, from Level, opts *DeployOptions, after ...pipeline.Dependency) pipeline.Step[Deployed] {
	d := &deployer{t: t, from: from}
	if opts != nil {
		d.o = *opts
	}
	if d.o.Name == "" {
		d.o.Name = "promote-" + t.Name + "-" + string(from) + "-" + string(t.Level)
	}
	if d.o.Model == "" {
		d.o.Model = t.Name
	}
	return d.add(p, pipeline.Ref[Candidate]{}, after)
}

type deployIn struct {
	Candidate pipeline.Ref[Candidate] `json:"candidate"`
}

type deployer struct {
	t    Target
	o    DeployOptions
	from Level // Promote's level; "" for Deploy
}

// format is the candidate's model format.
func (d *deployer) format() Format {
	if d.t.Runtime.Format != "" {
		return d.t.Runtime.Format
	}
	return GoModel
}

// placeholder is a model of the target's format, to validate and render
// the target before any model exists.
func (d *deployer) placeholder() Model {
	return Model{URI: "s3://bucket/model", Digest: "sha256:" + strings.Repeat("0", 64), Format: d.format(), Version: "v1"}
}

// check is the step's part of Validate.
func (d *deployer) check() error {
	var l field.List
	if err := d.t.Validate(d.placeholder()); err != nil {
		for _, e := range field.Errors(err) {
			l.Add(e)
		}
		if len(field.Errors(err)) == 0 {
			l.Add(field.Invalid(field.NewPath("target"), d.t.Name, "%v", err))
		}
	}
	l.Add(d.o.Gate.Check(field.NewPath("gate"))...)
	if d.from != "" {
		if err := checkLevel(d.from); err != nil {
			l.Add(field.NotSupported(field.NewPath("from"), d.from, Levels))
		} else if d.from == d.t.Level {
			l.Add(field.Invalid(field.NewPath("from"), string(d.from), "promotes to the same level; promote from a lower one"))
		}
	}
	if err := checkName("model name", d.o.Model); err != nil {
		l.Add(field.Invalid(field.NewPath("model"), d.o.Model, "%v", err))
	}
	if d.o.Timeout < 0 {
		l.Add(field.Invalid(field.NewPath("timeout"), d.o.Timeout.String(), "must not be negative"))
	}
	return l.Err()
}

// objects renders the target for m as unstructured objects.
func (d *deployer) objects(m Model) ([]*unstructured.Unstructured, error) {
	var objs []runtime.Object
	var err error
	switch d.t.withDefaults().Platform {
	case Kubernetes:
		objs, err = d.t.Kubernetes(m)
	default:
		objs, err = d.t.KServe(m)
	}
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, err
		}
		out = append(out, &unstructured.Unstructured{Object: u})
	}
	leaveReplicasToAutoscalers(out)
	return out, nil
}

// leaveReplicasToAutoscalers drops spec.replicas from each Deployment
// that a HorizontalPodAutoscaler of objs scales: applied with it, every
// rollout would reset the replicas the autoscaler chose (server-side
// apply makes Sluice the field's owner). A new Deployment starts with
// one replica, and the autoscaler raises it to its minimum.
func leaveReplicasToAutoscalers(objs []*unstructured.Unstructured) {
	scaled := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() != "HorizontalPodAutoscaler" {
			continue
		}
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "scaleTargetRef", "kind")
		name, _, _ := unstructured.NestedString(o.Object, "spec", "scaleTargetRef", "name")
		if kind == "Deployment" {
			scaled[o.GetNamespace()+"/"+name] = true
		}
	}
	for _, o := range objs {
		if o.GetKind() == "Deployment" && scaled[o.GetNamespace()+"/"+o.GetName()] {
			unstructured.RemoveNestedField(o.Object, "spec", "replicas")
		}
	}
}

// resourceNames are the API resources of the kinds the renderers make.
var resourceNames = map[string]string{
	"Deployment": "deployments", "Service": "services", "HorizontalPodAutoscaler": "horizontalpodautoscalers",
	"PodDisruptionBudget": "poddisruptionbudgets", "HTTPRoute": "httproutes",
	"InferenceService": "inferenceservices", "InferenceGraph": "inferencegraphs",
}

// access is the least the step needs of the API: to apply, watch and
// delete the kinds the target renders, in the target's namespace, and to
// watch a Deployment's ReplicaSets and pods.
func (d *deployer) access() ([]task.Access, error) {
	objs, err := d.objects(d.placeholder())
	if err != nil {
		return nil, err
	}
	groups := map[string][]string{}
	deployments := false
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		r, ok := resourceNames[gvk.Kind]
		if !ok {
			return nil, fmt.Errorf("serve: no resource name for kind %s", gvk.Kind)
		}
		if !slices.Contains(groups[gvk.Group], r) {
			groups[gvk.Group] = append(groups[gvk.Group], r)
		}
		deployments = deployments || gvk.Kind == "Deployment"
	}
	var rules []rbacv1.PolicyRule
	for _, g := range slices.Sorted(maps.Keys(groups)) {
		rs := groups[g]
		slices.Sort(rs)
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: rs, Verbs: []string{"get", "list", "watch", "create", "patch", "delete"}})
	}
	t := d.t.withDefaults()
	raw := t.Platform == KServe && t.Mode == RawDeployment
	if raw {
		// The rollout watches the Deployments KServe makes (see rawState).
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch"}})
	}
	if deployments || raw {
		rules = append(rules,
			rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"get", "list", "watch"}},
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}})
	}
	return []task.Access{{Namespace: t.Namespace, Rules: rules}}, nil
}

// run is the deploy step's code.
func (d *deployer) run(ctx context.Context, in deployIn) (Deployed, error) {
	t := d.t.withDefaults()
	out := Deployed{Target: t.Name, Level: t.Level, Namespace: t.Namespace}
	a, ok := task.AttemptFrom(ctx)
	inProcess := ok && a.InProcess
	local := inProcess && d.o.Kubeconfig == ""
	if d.o.LocalOnly && !local {
		out.Decision = Decision{Reason: "a local-only target: this run is not in process, so nothing is served"}
		return out, nil
	}
	scope, ok := artifact.FromContext(ctx)
	reg := d.o.Registry
	if reg == nil {
		if !ok || scope.Store == nil {
			return out, errors.New("serve: a deploy step needs the run's artifact store, where the model registry lives; set pipeline.Options.Artifacts (or -artifacts)")
		}
		reg = NewRegistry(scope.Store)
	}
	var c Candidate
	var v ModelVersion
	var err error
	if d.from != "" {
		lower, ok, err := reg.Live(ctx, t.Name, d.from)
		if err != nil {
			return out, err
		}
		if !ok {
			return out, fmt.Errorf("serve: nothing to promote: %s has no release at %s", t.Name, d.from)
		}
		if v, err = reg.Version(ctx, lower.Model, lower.Version); err != nil {
			return out, err
		}
		c.Note = fmt.Sprintf("promoted from %s (release %d)", d.from, lower.Seq)
	} else {
		c = in.Candidate.Get()
		if c.Model.URI == "" {
			return out, errors.New("serve: the candidate has no model: its Model artifact is empty; return one written with package artifact")
		}
		v, err = reg.Register(ctx, ModelVersion{
			Name: d.o.Model, Model: ModelFrom(c.Model, d.format()), Metrics: c.Metrics,
			Source: modelSource(c.Model, scope.Producer), Note: c.Note,
		})
		if err != nil {
			return out, err
		}
	}
	out.Version = v
	rel, hasLive, err := reg.Live(ctx, t.Name, t.Level)
	if err != nil {
		return out, err
	}
	var live *ModelVersion
	if hasLive {
		lv, err := reg.Version(ctx, rel.Model, rel.Version)
		if err != nil {
			return out, fmt.Errorf("serve: the live release of %s at %s names %s v%d: %w", t.Name, t.Level, rel.Model, rel.Version, err)
		}
		live = &lv
	}
	out.Decision, err = d.o.Gate.Decide(v, live)
	if err != nil {
		return out, err
	}
	if !out.Decision.Deploy {
		if local && hasLive {
			// The local target is this process: it serves the live
			// version, which an earlier run's process served.
			out.Endpoint, err = d.serveLocal(ctx, t, live.Model)
			out.Local = err == nil
			out.Serving = live
			return out, err
		}
		if hasLive && !local {
			out.Endpoint, out.Serving = rel.Endpoint, live
		}
		return out, nil
	}
	newRel := Release{Target: t.Name, Level: t.Level, Model: v.Name, Version: v.Version, Note: cmpOr(c.Note, t.Note), Run: scope.Producer.Run}
	var undo func(context.Context) error // back to what was live
	if local {
		out.Endpoint, err = d.serveLocal(ctx, t, v.Model)
		if err != nil {
			return out, err
		}
		out.Local = true
		undo = func(ctx context.Context) error {
			if live == nil {
				stopLocal(t)
				return nil
			}
			_, err := d.serveLocal(ctx, t, live.Model)
			return err
		}
	} else {
		objs, err := d.objects(v.Model)
		if err != nil {
			return out, err
		}
		var previous []*unstructured.Unstructured
		for _, raw := range rel.Objects {
			var u unstructured.Unstructured
			if err := u.UnmarshalJSON(raw); err != nil {
				return out, fmt.Errorf("serve: the live release's objects: %w", err)
			}
			previous = append(previous, &u)
		}
		client, mapper, err := d.cluster(inProcess)
		if err != nil {
			return out, err
		}
		a := &Applier{Client: client, Mapper: mapper, Timeout: d.o.Timeout, Progress: func(m string) {
			fmt.Fprintf(os.Stderr, "%s: %s at %s: %s\n", d.o.Name, v, t.Level, m)
		}}
		if err := a.Rollout(ctx, objs, previous); err != nil {
			return out, fmt.Errorf("serve: %s to %s at %s: %w", v, t.Name, t.Level, err)
		}
		undo = func(ctx context.Context) error { return a.restore(ctx, objs, previous) }
		for _, o := range objs {
			b, err := o.MarshalJSON()
			if err != nil {
				return out, err
			}
			newRel.Objects = append(newRel.Objects, b)
		}
		out.Endpoint = clusterEndpoint(t, objs)
	}
	newRel.Endpoint = out.Endpoint
	r, err := reg.Release(ctx, newRel)
	if err != nil {
		// The registry would not know what is live, and the next deploy
		// would compare against the wrong version: undo the rollout.
		err = fmt.Errorf("serve: %s to %s at %s: recording the release: %w", v, t.Name, t.Level, err)
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(d.o.Timeout, DefaultRolloutTimeout))
		defer cancel()
		if uerr := undo(uctx); uerr != nil {
			return out, fmt.Errorf("%w; rolling back failed too, so %s at %s serves what the registry does not record: %v", err, t.Name, t.Level, uerr)
		}
		out.Endpoint, out.Local = "", false
		return out, fmt.Errorf("%w; rolled back to the previous version", err)
	}
	r.Objects = nil // in the registry; the step's output stays small
	out.Release = &r
	out.Serving = &v
	return out, nil
}

// modelSource is the step that wrote the model (its artifact's
// producer), or else the deploy step.
func modelSource(m artifact.Model, deploy artifact.Producer) artifact.Producer {
	if m.Producer.Step != "" {
		return artifact.Producer{Pipeline: m.Producer.Pipeline, Run: m.Producer.Run, Step: m.Producer.Step, Instance: m.Producer.Instance}
	}
	return artifact.Producer{Pipeline: deploy.Pipeline, Run: deploy.Run, Step: deploy.Step}
}

// clusterEndpoint is where a cluster target is reached: its first
// Service, or its InferenceService's host.
func clusterEndpoint(t Target, objs []*unstructured.Unstructured) string {
	for _, o := range objs {
		switch o.GetKind() {
		case "Service":
			return fmt.Sprintf("http://%s.%s.svc", o.GetName(), o.GetNamespace())
		case "InferenceService":
			return fmt.Sprintf("http://%s.%s.svc", o.GetName(), o.GetNamespace())
		}
	}
	return ""
}

// serviceAccountToken is where a pod's ServiceAccount token is mounted.
const serviceAccountToken = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// cluster returns clients of the cluster to deploy to: the one the pod
// runs in (its in-cluster configuration, or KUBECONFIG's), or, in
// process, DeployOptions.Kubeconfig's.
func (d *deployer) cluster(inProcess bool) (dynamic.Interface, *restmapper.DeferredDiscoveryRESTMapper, error) {
	var cfg *rest.Config
	var err error
	if inProcess && d.o.Kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", d.o.Kubeconfig)
	} else {
		// In a pod: the cluster it runs in, through its ServiceAccount.
		// KUBECONFIG wins when set, as for every client-go program (a
		// step run by hand with `prog task`, say).
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
		if clientcmd.IsEmptyConfig(err) {
			err = errors.New("no ServiceAccount token at " + serviceAccountToken + " and no KUBECONFIG: a step in a pod deploys as its ServiceAccount; keep its token mounted (automountServiceAccountToken), or run the step with KUBECONFIG set")
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("serve: reaching the cluster to deploy to: %w", err)
	}
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	return client, restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), nil
}

// The local target: models served by this process, by target and level.
var (
	localMu      sync.Mutex
	localServers = map[string]*localServer{}
)

type localServer struct {
	url    string
	model  Model
	cancel context.CancelFunc
	done   chan error
}

// serveLocal serves m for t in this process on 127.0.0.1 and returns its
// URL once the model is loaded. A server of t's that serves another
// version is stopped after the new one is ready.
func (d *deployer) serveLocal(ctx context.Context, t Target, m Model) (string, error) {
	key := t.Name + "/" + string(t.Level)
	localMu.Lock()
	defer localMu.Unlock()
	if old := localServers[key]; old != nil && old.model == m {
		return old.url, nil
	}
	var srv *Server
	var err error
	if m.Format == GoModel {
		name := d.o.Predictor
		if name == "" {
			names := registered()
			if len(names) != 1 {
				return "", fmt.Errorf("serve: the local target serves with a registered Go predictor (serve.Register), and %d are registered (%s): set DeployOptions.Predictor", len(names), strings.Join(names, ", "))
			}
			name = names[0]
		}
		newServer, ok := registeredServer(name)
		if !ok {
			return "", fmt.Errorf("serve: no Go predictor %q is registered (registered: %s)", name, strings.Join(registered(), ", "))
		}
		srv, err = newServer(roleWhole, m, "", "", &Options{DrainDelay: 0})
	} else {
		sm := m
		sm.Format = "" // the stand-in takes any format's bytes
		srv, err = NewServer(standIn(t.Name, m.Format), sm, &Options{DrainDelay: 0})
	}
	if err != nil {
		return "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ls := &localServer{url: "http://" + l.Addr().String(), model: m, cancel: cancel, done: make(chan error, 1)}
	go func() { ls.done <- srv.Serve(sctx, l) }()
	// Serve loads the model; ready when Load returns.
	if err := srv.Load(ctx); err != nil {
		cancel()
		<-ls.done
		return "", err
	}
	if old := localServers[key]; old != nil {
		old.cancel()
		<-old.done
	}
	localServers[key] = ls
	return ls.url, nil
}

// standIn is the local target's server of a model in a format only a
// KServe runtime serves (sklearn, xgboost, onnx, …): it loads the model's
// bytes, checked against their digest, so that a local run fails where a
// cluster's would (no model, damaged bytes), and answers health and
// metadata as the runtime would; a prediction is answered 501, naming the
// runtime that serves it in a cluster.
func standIn(name string, f Format) Predictor[map[string]any, map[string]any] {
	return Predictor[map[string]any, map[string]any]{
		Name:        name,
		Description: fmt.Sprintf("A stand-in for a %s model's KServe runtime: the model loads, but predictions need the runtime, in a cluster.", f),
		Load: func(ctx context.Context, m Model) (Func[map[string]any, map[string]any], error) {
			r, err := OpenModel(ctx, m)
			if err != nil {
				return nil, err
			}
			defer r.Close()
			if _, err := io.Copy(io.Discard, r); err != nil {
				return nil, err
			}
			return func(context.Context, map[string]any) (map[string]any, error) {
				return nil, &httpError{code: http.StatusNotImplemented, reason: "stand_in",
					msg: fmt.Sprintf("model %s: a %s model is served by its KServe runtime in a cluster; the local target loaded it, but cannot predict with it (a Go model, format %s, predicts locally)", name, f, GoModel)}
			}, nil
		},
	}
}

// stopLocal stops serving t's model in this process, if it does.
func stopLocal(t Target) {
	localMu.Lock()
	defer localMu.Unlock()
	key := t.Name + "/" + string(t.Level)
	if s := localServers[key]; s != nil {
		s.cancel()
		<-s.done
		delete(localServers, key)
	}
}

// LocalEndpoint returns the URL where this process serves target's model
// at level (the local target of [Deploy]), and whether it does.
func LocalEndpoint(target string, level Level) (string, bool) {
	localMu.Lock()
	defer localMu.Unlock()
	if s := localServers[target+"/"+string(level)]; s != nil {
		return s.url, true
	}
	return "", false
}

// StopLocal stops every model this process serves as a local target,
// letting the requests in flight finish. Tests call it when done.
func StopLocal() {
	localMu.Lock()
	defer localMu.Unlock()
	for k, s := range localServers {
		s.cancel()
		<-s.done
		delete(localServers, k)
	}
}

// summarizeDeployed is the deploy step's lines of the run summary.
func summarizeDeployed(_ pipeline.SummaryInfo, d Deployed) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s at %s: %s (%s)\n", d.Target, d.Level, d.Decision, d.Version)
	if d.Endpoint != "" {
		fmt.Fprintf(&b, "  serving at %s\n", d.Endpoint)
	}
	return b.String()
}
