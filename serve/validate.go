package serve

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/resources"
)

// FieldError is one problem [Target.Validate] found, at a field path such
// as "target.canary".
type FieldError = field.Error

// FieldErrors returns every *FieldError in an error returned by
// [Target.Validate] or a renderer, in the order found.
func FieldErrors(err error) []*FieldError { return field.Errors(err) }

// kserveRuntime is one of KServe's built-in ServingRuntimes (v0.15,
// config/runtimes): the model formats it serves and the protocols it
// speaks.
type kserveRuntime struct {
	name      string
	formats   []Format
	protocols []Protocol
}

// builtinRuntimes are KServe v0.15's built-in runtimes, as their
// ClusterServingRuntime manifests declare them.
var builtinRuntimes = []kserveRuntime{
	{"kserve-sklearnserver", []Format{SKLearn}, []Protocol{ProtocolV1, ProtocolV2}},
	{"kserve-xgbserver", []Format{XGBoost}, []Protocol{ProtocolV1, ProtocolV2}},
	{"kserve-lgbserver", []Format{LightGBM}, []Protocol{ProtocolV1, ProtocolV2}},
	{"kserve-mlserver", []Format{SKLearn, XGBoost, LightGBM}, []Protocol{ProtocolV2}},
	{"kserve-tensorflow-serving", []Format{TensorFlow}, []Protocol{ProtocolV1}},
	{"kserve-torchserve", []Format{PyTorch}, []Protocol{ProtocolV1, ProtocolV2}},
	{"kserve-tritonserver", []Format{TensorFlow, ONNX, PyTorch, Triton}, []Protocol{ProtocolV2}},
	{"kserve-huggingfaceserver", []Format{HuggingFace}, []Protocol{ProtocolV1, ProtocolV2}},
}

// MaxReplicas is the most replicas a target may ask for.
const MaxReplicas = 10000

// formats are the model formats a target can serve.
var formats = []Format{SKLearn, XGBoost, LightGBM, TensorFlow, PyTorch, ONNX, Triton, HuggingFace, GoModel}

// runtimesFor returns the names of the built-in runtimes that serve f over
// p.
func runtimesFor(f Format, p Protocol) []string {
	var out []string
	for _, r := range builtinRuntimes {
		if slices.Contains(r.formats, f) && slices.Contains(r.protocols, p) {
			out = append(out, r.name)
		}
	}
	return out
}

// protocolsFor returns the protocols some built-in runtime serves f over.
func protocolsFor(f Format) []Protocol {
	var out []Protocol
	for _, p := range Protocols {
		if len(runtimesFor(f, p)) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// Validate checks t, about to serve m, and returns every problem at once
// as one error listing them one per line (get them back with
// [FieldErrors]), or nil. Paths start at "target" (and "model" for m).
// Defaults are applied first, so only the values a user wrote, or their
// defaults' combinations, are reported. Examples:
//
//	target.canary: Invalid 120: must be 0 to 100 (percent of traffic)
//	target.replicas.min: Invalid 5: must be at most replicas.max (3); raise max or lower min
//	target.autoscale.concurrency: Forbidden: only KServe Serverless scales on concurrency (Knative's autoscaler); use autoscale.cpuPercent, or …
//	target.resources.gpuModel: Invalid "H100": … (from resources.Resolve)
//
// It never contacts a cluster.
func (t Target) Validate(m Model) error {
	var l field.List
	t.validate(&l, m)
	return l.Err()
}

func (t Target) validate(l *field.List, m Model) {
	user := t
	t = t.withDefaults()
	root := field.NewPath("target")

	// Identity.
	validateName(l, root.Child("name"), t.Name, MaxNameLength)
	switch {
	case t.Level == "":
		l.Add(field.Required(root.Child("level"), "set one of dev, staging, prod"))
	case !slices.Contains(Levels, t.Level):
		l.Add(field.NotSupported(root.Child("level"), t.Level, Levels))
	}
	if user.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(user.Namespace) {
			l.Add(field.Invalid(root.Child("namespace"), user.Namespace, "%s; or leave it empty for \"sluice-<level>\"", msg))
		}
	}
	if t.ServiceAccount != "" {
		for _, msg := range validation.IsDNS1123Subdomain(t.ServiceAccount) {
			l.Add(field.Invalid(root.Child("serviceAccount"), t.ServiceAccount, "%s", msg))
		}
	}

	// Platform and mode.
	platformOK := slices.Contains(Platforms, t.Platform)
	if !platformOK {
		l.Add(field.NotSupported(root.Child("platform"), t.Platform, Platforms))
	}
	kserve, kube := t.Platform == KServe, t.Platform == Kubernetes
	switch {
	case kube && user.Mode != "":
		l.Add(field.Forbidden(root.Child("mode"), "a deployment mode is KServe's; leave it empty on the Kubernetes platform"))
	case kserve && !slices.Contains(Modes, t.Mode):
		l.Add(field.NotSupported(root.Child("mode"), t.Mode, Modes))
	}
	serverless := kserve && t.Mode == Serverless
	raw := kserve && t.Mode == RawDeployment

	// Model, runtime and protocol.
	f := t.format(m)
	t.validateRuntime(l, root, m, f, kserve, kube)

	// Resources: resolved exactly as a pipeline task's.
	if _, err := resources.Resolve(t.Resources, t.NodePools); err != nil {
		l.AddUnder(root.Child("resources"), err)
	}

	t.validateScaling(l, root, user, kube, serverless, raw)
	t.validateTraffic(l, root, m, f, kserve, kube, raw)

	if tr := t.Transformer; tr != nil {
		p := root.Child("transformer")
		if tr.Image == "" {
			l.Add(field.Required(p.Child("image"), "the transformer runs the program's own image; set it (the image of the pipeline's Go tasks)"))
		}
		l.Add(checkImage(p.Child("image"), tr.Image))
		if tr.Resources.GPUs > 0 || tr.Resources.MIG != "" {
			l.Add(field.Forbidden(p.Child("resources"), "a transformer gets no GPU; give GPUs to the predictor (target.resources)"))
		}
		if _, err := resources.Resolve(tr.Resources, t.NodePools); err != nil {
			l.AddUnder(p.Child("resources"), err)
		}
	}
}

// validateName reports a name that is not a DNS-1035 label of at most
// max characters.
func validateName(l *field.List, p *field.Path, name string, max int) {
	switch {
	case name == "":
		l.Add(field.Required(p, "name the target: a DNS-1035 label such as \"churn\""))
		return
	case len(name) > max:
		l.Add(field.TooLong(p, name, max))
	}
	for _, msg := range validation.IsDNS1035Label(name) {
		if strings.Contains(msg, "at most") {
			continue // reported above, with our own limit
		}
		l.Add(field.Invalid(p, name, "%s", msg))
	}
}

func checkImage(p *field.Path, ref string) *field.Error {
	if ref == "" {
		return nil
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return field.Invalid(p, ref, "not an image reference (%v); write [registry/]repository[:tag][@sha256:digest]", err)
	}
	return nil
}

func (t Target) validateRuntime(l *field.List, root *field.Path, m Model, f Format, kserve, kube bool) {
	rp := root.Child("runtime")
	if m.URI == "" {
		l.Add(field.Required(field.NewPath("model", "uri"), "the model to serve has no URI; pass the Model of an upstream step's artifact (serve.ModelFrom)"))
	}
	fp := rp.Child("format")
	if t.Runtime.Format == "" {
		fp = field.NewPath("model", "format")
	}
	switch {
	case f == "":
		l.Add(field.Required(fp, "set the model's format (sklearn, onnx, …, or sluice-go for the program's Go predictor)"))
	case !slices.Contains(formats, f):
		l.Add(field.NotSupported(fp, f, formats))
		f = "" // nothing below can be checked
	}
	if !slices.Contains(Protocols, t.Protocol) {
		l.Add(field.NotSupported(root.Child("protocol"), t.Protocol, Protocols))
	}
	l.Add(checkImage(rp.Child("image"), t.Runtime.Image))
	switch {
	case f == GoModel:
		if t.Runtime.Image == "" {
			l.Add(field.Required(rp.Child("image"), "format sluice-go is served by the program's own binary: set the program's image"))
		}
		if t.Runtime.Name != "" {
			l.Add(field.Forbidden(rp.Child("name"), "format sluice-go runs runtime.image, not a ServingRuntime; remove runtime.name"))
		}
		if t.Protocol == ProtocolV1 {
			l.Add(field.Invalid(root.Child("protocol"), string(t.Protocol), "the Go predictor speaks the Open Inference Protocol; use v2"))
		}
	case kube:
		if t.Runtime.Image == "" && f != "" {
			l.Add(field.Required(rp.Child("image"), "the Kubernetes platform has no ServingRuntime to pick an image for format %q: set the image of a server for it (or use platform KServe)", f))
		}
		if t.Runtime.Name != "" {
			l.Add(field.Forbidden(rp.Child("name"), "ServingRuntimes are KServe's; on the Kubernetes platform set runtime.image instead"))
		}
	case kserve && f != "" && slices.Contains(Protocols, t.Protocol):
		if t.Runtime.Name == "" {
			if len(runtimesFor(f, t.Protocol)) == 0 {
				l.Add(field.Invalid(root.Child("protocol"), string(t.Protocol), "no KServe runtime serves format %q over %s; use %s", f, t.Protocol, joinQuoted(protocolsFor(f))))
			}
			break
		}
		i := slices.IndexFunc(builtinRuntimes, func(r kserveRuntime) bool { return r.name == t.Runtime.Name })
		if i < 0 {
			break // a runtime of the user's own: not ours to check
		}
		r := builtinRuntimes[i]
		switch {
		case !slices.Contains(r.formats, f):
			l.Add(field.Invalid(rp.Child("name"), t.Runtime.Name, "this runtime serves %s, not %q; use %s, or leave runtime.name empty to let KServe pick",
				joinQuoted(r.formats), f, orNone(runtimesFor(f, t.Protocol))))
		case !slices.Contains(r.protocols, t.Protocol):
			l.Add(field.Invalid(root.Child("protocol"), string(t.Protocol), "runtime %q speaks %s; use one of them or another runtime (%s)",
				r.name, joinQuoted(r.protocols), orNone(runtimesFor(f, t.Protocol))))
		}
	}
}

func (t Target) validateScaling(l *field.List, root *field.Path, user Target, kube, serverless, raw bool) {
	rp := root.Child("replicas")
	r := t.Replicas
	minR := *r.Min
	platform := "the Kubernetes platform"
	if raw {
		platform = "KServe RawDeployment"
	}
	switch {
	case minR < 0:
		l.Add(field.Invalid(rp.Child("min"), minR, "must be 0 (scale to zero) or more"))
	case minR > r.Max && r.Max >= 1:
		l.Add(field.Invalid(rp.Child("min"), minR, "must be at most replicas.max (%d); raise max or lower min", r.Max))
	case minR == 0 && (kube || raw):
		l.Add(field.Forbidden(rp.Child("min"), "%s cannot scale to zero (a HorizontalPodAutoscaler keeps at least one replica); set min to 1 or more, or use platform KServe with mode Serverless", platform))
	case minR == 0 && t.Autoscale.CPUPercent > 0:
		l.Add(field.Forbidden(rp.Child("min"), "scaling on CPU cannot scale to zero (it runs a HorizontalPodAutoscaler); scale on autoscale.concurrency or autoscale.rps, or set min to 1"))
	}
	switch {
	case r.Max < 1:
		l.Add(field.Invalid(rp.Child("max"), r.Max, "must be 1 or more"))
	case r.Max > MaxReplicas:
		l.Add(field.Invalid(rp.Child("max"), r.Max, "must be at most %d", MaxReplicas))
	}
	if user.Replicas.Initial != 0 && (r.Initial < 0 || r.Initial > r.Max || r.Initial < minR) {
		l.Add(field.Invalid(rp.Child("initial"), r.Initial, "must be between replicas.min (%d) and replicas.max (%d)", minR, r.Max))
	}

	ap := root.Child("autoscale")
	a := user.Autoscale
	set := 0
	for _, v := range []int{a.CPUPercent, a.Concurrency, a.RPS} {
		if v != 0 {
			set++
		}
	}
	if set > 1 {
		l.Add(field.Forbidden(ap, "set only one of cpuPercent, concurrency and rps: the autoscaler follows one metric"))
	}
	if a.CPUPercent < 0 || a.CPUPercent > 100 {
		l.Add(field.Invalid(ap.Child("cpuPercent"), a.CPUPercent, "must be 1 to 100 (percent of the CPU request)"))
	}
	if a.CPUPercent > 0 && t.Resources.CPU == "" {
		l.Add(field.Required(root.Child("resources", "cpu"), "autoscaling on CPU utilisation measures it against the CPU request; set resources.cpu"))
	} else if user.Autoscale == (Autoscale{}) && t.Autoscale.CPUPercent > 0 && r.Max > minR && t.Resources.CPU == "" {
		l.Add(field.Required(root.Child("resources", "cpu"), "the target autoscales on CPU utilisation (%d%% by default), measured against the CPU request; set resources.cpu", DefaultCPUPercent))
	}
	if x := t.Transformer; x != nil && t.Autoscale.CPUPercent > 0 && r.Max > minR && x.Resources.CPU == "" {
		l.Add(field.Required(root.Child("transformer", "resources", "cpu"), "the target autoscales on CPU utilisation, which needs a CPU request on every container; set transformer.resources.cpu"))
	}
	for _, c := range []struct {
		name string
		v    int
	}{{"concurrency", a.Concurrency}, {"rps", a.RPS}} {
		switch {
		case c.v < 0 || c.v > math.MaxInt32:
			l.Add(field.Invalid(ap.Child(c.name), c.v, "must be 1 to %d", math.MaxInt32))
		case c.v > 0 && !serverless:
			l.Add(field.Forbidden(ap.Child(c.name), "only KServe Serverless scales on %s (Knative's autoscaler); use autoscale.cpuPercent, or platform KServe with mode Serverless", c.name))
		}
	}

	op := root.Child("rollout")
	ro := user.Rollout
	if serverless && (ro.MaxSurge != "" || ro.MaxUnavailable != "") {
		l.Add(field.Forbidden(op, "KServe Serverless rolls out Knative revisions, not Deployments; remove maxSurge and maxUnavailable, and use canary for a gradual rollout"))
	}
	if ro.MinReadySeconds != 0 && !kube {
		l.Add(field.Forbidden(op.Child("minReadySeconds"), "KServe's InferenceService has no minimum ready time; remove it, or use platform Kubernetes"))
	}
	if ro.MinReadySeconds < 0 || ro.MinReadySeconds > math.MaxInt32 {
		l.Add(field.Invalid(op.Child("minReadySeconds"), ro.MinReadySeconds, "must be 0 to %d", math.MaxInt32))
	}
	if kube || raw {
		surge, ok1 := checkIntOrPercent(l, op.Child("maxSurge"), t.Rollout.MaxSurge)
		unav, ok2 := checkIntOrPercent(l, op.Child("maxUnavailable"), t.Rollout.MaxUnavailable)
		if ok1 && ok2 && surge == 0 && unav == 0 {
			l.Add(field.Invalid(op.Child("maxUnavailable"), t.Rollout.MaxUnavailable, "maxSurge and maxUnavailable cannot both be 0: the rollout could not make progress; raise one of them"))
		}
	}
}

// checkIntOrPercent reports s unless it is a non-negative integer or a
// percentage 0% to 100%, and returns its number.
func checkIntOrPercent(l *field.List, p *field.Path, s string) (int, bool) {
	num, pct := strings.CutSuffix(s, "%")
	n, err := strconv.Atoi(num)
	switch {
	case err != nil || n < 0 || n > math.MaxInt32 || strings.HasPrefix(num, "+") || (len(num) > 1 && num[0] == '0'):
		l.Add(field.Invalid(p, s, "must be a number of replicas (\"1\") or a percentage (\"25%\")"))
		return 0, false
	case pct && n > 100:
		l.Add(field.Invalid(p, s, "a percentage must be 0% to 100%"))
		return 0, false
	}
	return n, true
}

func (t Target) validateTraffic(l *field.List, root *field.Path, m Model, f Format, kserve, kube, raw bool) {
	cp := root.Child("canary")
	switch {
	case t.Canary < 0 || t.Canary > 100:
		l.Add(field.Invalid(cp, t.Canary, "must be 0 to 100 (percent of traffic)"))
	case t.Canary > 0 && len(t.Variants) > 0:
		l.Add(field.Forbidden(cp, "a canary cannot be combined with A/B variants; remove canary, or remove variants"))
	case t.Canary > 0 && raw:
		l.Add(field.Forbidden(cp, "KServe runs canaries only in Serverless mode; use mode Serverless, or platform Kubernetes"))
	}
	sp := root.Child("stable")
	switch {
	case t.Stable != nil && kserve:
		l.Add(field.Forbidden(sp, "KServe keeps the previous revision for a canary itself; remove stable"))
	case t.Stable != nil && t.Canary == 0:
		l.Add(field.Forbidden(sp, "stable is the model the stable track serves during a canary; remove it, or set canary"))
	case t.Stable == nil && t.Canary > 0 && kube:
		l.Add(field.Required(sp, "a canary on the Kubernetes platform needs the model the stable track keeps serving (the Deploy step sets it from the live version)"))
	case t.Stable != nil:
		validateModel(l, sp, *t.Stable, f)
	}

	vp := root.Child("variants")
	if len(t.Variants) == 1 {
		l.Add(field.Invalid(vp, 1, "an A/B test needs two variants or more; remove variants to serve one model"))
	}
	sum := 0
	seen := map[string]bool{}
	for i, v := range t.Variants {
		p := vp.Index(i)
		sum += v.Weight
		if v.Name == "" {
			l.Add(field.Required(p.Child("name"), "name the variant, for example \"a\""))
		} else {
			for _, msg := range validation.IsDNS1035Label(v.Name) {
				l.Add(field.Invalid(p.Child("name"), v.Name, "%s", msg))
			}
			if seen[v.Name] {
				l.Add(field.Duplicate(p.Child("name"), v.Name, "each variant needs its own name"))
			}
			seen[v.Name] = true
			if n := len(t.Name) + 1 + len(v.Name); t.Name != "" && n > MaxNameLength {
				l.Add(field.Invalid(p.Child("name"), v.Name, "the variant's objects are named %q (%d characters, at most %d); shorten the variant's or the target's name", t.Name+"-"+v.Name, n, MaxNameLength))
			}
		}
		if v.Weight < 0 || v.Weight > 100 {
			l.Add(field.Invalid(p.Child("weight"), v.Weight, "must be 0 to 100 (percent of traffic)"))
		}
		if v.Model != (Model{}) {
			validateModel(l, p.Child("model"), v.Model, f)
		}
	}
	if len(t.Variants) > 1 && sum != 100 {
		l.Add(field.Invalid(vp, sum, "the variants' weights sum to %d; they must sum to 100", sum))
	}

	gp := root.Child("gateway")
	routed := kube && (t.Canary > 0 || len(t.Variants) > 1)
	switch {
	case t.Gateway != (GatewayRef{}) && !routed:
		l.Add(field.Forbidden(gp, "the gateway carries the HTTPRoute of a canary or of variants on the Kubernetes platform; remove it"))
	case routed && t.Gateway.Name == "":
		l.Add(field.Required(gp.Child("name"), "a canary or variants on the Kubernetes platform split traffic with a Gateway API HTTPRoute; name the Gateway it attaches to"))
	}
	if t.Gateway.Name != "" {
		for _, msg := range validation.IsDNS1123Subdomain(t.Gateway.Name) {
			l.Add(field.Invalid(gp.Child("name"), t.Gateway.Name, "%s", msg))
		}
	}
	if t.Gateway.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(t.Gateway.Namespace) {
			l.Add(field.Invalid(gp.Child("namespace"), t.Gateway.Namespace, "%s", msg))
		}
	}
}

// validateModel checks a model other than the one given to the renderer:
// the stable model or a variant's.
func validateModel(l *field.List, p *field.Path, m Model, f Format) {
	if m.URI == "" {
		l.Add(field.Required(p.Child("uri"), "set where the model is (s3://…, gs://…)"))
	}
	if m.Format != "" && f != "" && m.Format != f {
		l.Add(field.Invalid(p.Child("format"), string(m.Format), "every model of a target is served by the same runtime, for format %q; serve this one with a target of its own", f))
	}
}

func joinQuoted[T ~string](vs []T) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(string(v))
	}
	return strings.Join(q, ", ")
}

func orNone(vs []string) string {
	if len(vs) == 0 {
		return "no built-in runtime serves it over this protocol"
	}
	return joinQuoted(vs)
}
