package serve

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/resources"
)

// Render writes the objects t renders for m on its platform
// ([Target.KServe] or [Target.Kubernetes]) to w as YAML, one document
// each, separated by "---" lines, in the renderer's order. The output is
// deterministic: the same target and model always give the same bytes.
func Render(t Target, m Model, w io.Writer) error {
	var objs []runtime.Object
	var err error
	switch t.Platform {
	case Kubernetes:
		objs, err = t.Kubernetes(m)
	default:
		objs, err = t.KServe(m)
	}
	if err != nil {
		return err
	}
	for i, o := range objs {
		b, err := kubepod.Render(o)
		if err != nil {
			return fmt.Errorf("serve: render %T: %w", o, err)
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// prepare applies defaults for the platform p of the renderer called and
// validates: a target meant for the other platform is an error.
func (t Target) prepare(p Platform, m Model) (Target, error) {
	var l field.List
	switch t.Platform {
	case "":
		t.Platform = p
	case p:
	default:
		if !slices.Contains(Platforms, t.Platform) {
			break // validate reports it
		}
		l.Add(field.Invalid(field.NewPath("target", "platform"), string(t.Platform),
			"this target is for %s; render it with Target.%s, or set platform %s", t.Platform, t.Platform, p))
		return t, l.Err()
	}
	t.validate(&l, m)
	if err := l.Err(); err != nil {
		return t, err
	}
	return t.withDefaults(), nil
}

// objectMeta returns the metadata of an object named name: the target's
// labels (plus extra) and the change note.
func (t Target) objectMeta(name string, extra map[string]string) metav1.ObjectMeta {
	l := t.labels()
	maps.Copy(l, extra)
	om := metav1.ObjectMeta{Name: name, Namespace: t.Namespace, Labels: l}
	if t.Note != "" {
		om.Annotations = map[string]string{AnnotationNote: t.Note}
	}
	return om
}

// modelAnnotations records the model an object serves.
func modelAnnotations(into map[string]string, m Model) map[string]string {
	if into == nil {
		into = map[string]string{}
	}
	into[AnnotationModelURI] = m.URI
	if m.Digest != "" {
		into[AnnotationModelDigest] = m.Digest
	}
	if m.Version != "" {
		into[AnnotationModelVersion] = m.Version
	}
	return into
}

// modelEnv is the environment that tells a container which model to load.
// Arguments can use it: Kubernetes expands "$(SLUICE_MODEL_URI)".
func modelEnv(m Model, f Format) []corev1.EnvVar {
	env := []corev1.EnvVar{{Name: "SLUICE_MODEL_URI", Value: m.URI}, {Name: "SLUICE_MODEL_FORMAT", Value: string(f)}}
	if m.Digest != "" {
		env = append(env, corev1.EnvVar{Name: "SLUICE_MODEL_DIGEST", Value: m.Digest})
	}
	if m.Version != "" {
		env = append(env, corev1.EnvVar{Name: "SLUICE_MODEL_VERSION", Value: m.Version})
	}
	return env
}

// placement is where the pods of one component may run.
type placement struct {
	nodeSelector map[string]string
	tolerations  []corev1.Toleration
	affinity     *corev1.Affinity
	spread       []corev1.TopologySpreadConstraint
}

// hostnameKey is the node label that tells nodes apart.
const hostnameKey = "kubernetes.io/hostname"

// placement turns the resolved profile into pod placement, with the rules
// between levels and the spread of replicas (see [Placement]). podLabels
// are the labels of the pods to spread.
func (t Target) placement(r resources.Placement, podLabels map[string]string) placement {
	p := placement{nodeSelector: r.NodeSelector, tolerations: r.Tolerations}
	if r.Affinity != nil {
		p.affinity = r.Affinity.DeepCopy()
	}
	if !t.Placement.ShareNodes {
		if p.affinity == nil {
			p.affinity = &corev1.Affinity{}
		}
		if p.affinity.PodAntiAffinity == nil {
			p.affinity.PodAntiAffinity = &corev1.PodAntiAffinity{}
		}
		// Required, so never relaxed under pressure; over every namespace,
		// since each level has its own; Exists, so that pods without the
		// label (everyone else's) do not count as another level.
		aa := p.affinity.PodAntiAffinity
		aa.RequiredDuringSchedulingIgnoredDuringExecution = append(aa.RequiredDuringSchedulingIgnoredDuringExecution, corev1.PodAffinityTerm{
			LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: LabelLevel, Operator: metav1.LabelSelectorOpExists},
				{Key: LabelLevel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{string(t.Level)}},
			}},
			NamespaceSelector: &metav1.LabelSelector{},
			TopologyKey:       hostnameKey,
		})
	}
	if !t.Placement.NoSpread {
		p.spread = []corev1.TopologySpreadConstraint{{
			MaxSkew:           1,
			TopologyKey:       hostnameKey,
			WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: maps.Clone(podLabels)},
		}}
	}
	return p
}

// resolved resolves a profile that Validate accepted.
func (t Target) resolve(p resources.Profile) resources.Resolved {
	r, err := resources.Resolve(p, t.NodePools)
	if err != nil {
		// Validate resolved the same profile against the same pools.
		panic("serve: a validated profile does not resolve: " + err.Error())
	}
	return r
}

// container is what the renderers need to build one container.
type container struct {
	name     string
	image    string
	args     []string
	env      []corev1.EnvVar
	port     int32
	portName string
	res      resources.Resolved
	ours     bool // the program's own binary: read-only root, probes
	probes   bool // speaks the V2 protocol: probes on its health paths
}

// build returns the container and the volumes it mounts.
func (c container) build() (corev1.Container, []corev1.Volume) {
	sc := kubepod.RestrictedSecurityContext()
	ctr := corev1.Container{
		Name:            c.name,
		Image:           c.image,
		Args:            c.args,
		Env:             c.env,
		SecurityContext: sc,
		Resources:       corev1.ResourceRequirements{Requests: c.res.Requests, Limits: c.res.Limits},
	}
	if c.port != 0 {
		ctr.Ports = []corev1.ContainerPort{{Name: c.portName, ContainerPort: c.port, Protocol: corev1.ProtocolTCP}}
	}
	if c.probes && c.port != 0 {
		ctr.ReadinessProbe = httpProbe("/v2/health/ready", c.port)
		ctr.LivenessProbe = httpProbe("/v2/health/live", c.port)
	}
	var vols []corev1.Volume
	if c.ours {
		// The program writes nothing but temporary files.
		sc.ReadOnlyRootFilesystem = ptr.To(true)
		vols = append(vols, emptyDir(c.name+"-tmp", "", nil))
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: c.name + "-tmp", MountPath: "/tmp"})
	}
	if q := c.res.SharedMemory; q != nil {
		vols = append(vols, emptyDir(c.name+"-shm", corev1.StorageMediumMemory, q))
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: c.name + "-shm", MountPath: "/dev/shm"})
	}
	return ctr, vols
}

func emptyDir(name string, medium corev1.StorageMedium, size *resource.Quantity) corev1.Volume {
	v := corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: medium}}}
	if size != nil {
		q := size.DeepCopy()
		v.EmptyDir.SizeLimit = &q
	}
	return v
}

func httpProbe(path string, port int32) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(port)}}}
}

// args returns the predictor's arguments: Runtime.Args, or ["serve"] for
// the Go predictor.
func (t Target) args(f Format) []string {
	if t.Runtime.Args == nil && f == GoModel {
		return []string{"serve"}
	}
	return append([]string(nil), t.Runtime.Args...)
}

// intOrPercent turns a validated rollout value into an IntOrString.
func intOrPercent(s string) *intstr.IntOrString {
	if n, err := strconv.Atoi(s); err == nil {
		v := intstr.FromInt32(int32(n))
		return &v
	}
	v := intstr.FromString(s)
	return &v
}

// track is one set of identical replicas: the stable one, the canary or
// a variant.
type track struct {
	name  string // the objects' name
	label string // the sluice.dev/track label
	model Model
}

// tracks returns the tracks of t serving m.
func (t Target) tracks(m Model) []track {
	switch {
	case len(t.Variants) > 0:
		out := make([]track, len(t.Variants))
		for i, v := range t.Variants {
			vm := v.Model
			if vm == (Model{}) {
				vm = m
			}
			out[i] = track{name: t.Name + "-" + v.Name, label: v.Name, model: vm}
		}
		return out
	case t.Canary > 0 && t.Stable != nil:
		return []track{{name: t.Name, label: "stable", model: *t.Stable}, {name: t.Name + "-canary", label: "canary", model: m}}
	}
	return []track{{name: t.Name, label: "stable", model: m}}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
