package kubepod

import (
	"errors"
	"fmt"
	"math"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/task"
)

const (
	// ContainerName is the name of the one container of a step's pod.
	ContainerName = "main"
	// ShmVolume is the name of the memory-backed volume mounted at ShmPath
	// when a step's profile asks for shared memory.
	ShmVolume = "dshm"
	// ShmPath is where ShmVolume is mounted.
	ShmPath = "/dev/shm"
)

// ErrNoImage is wrapped by the error [Spec] returns for a Go task with no
// image: neither the task nor Options.Image names one.
var ErrNoImage = errors.New("kubepod: no image")

// Invocation is what the backend decides about starting a step's
// container, which the Plan cannot say: where the input and output go.
type Invocation struct {
	// Step, Input and OutputFile are a Go task's task-mode arguments (see
	// [backends.InvokeArgs]): the step's name, its input document and the
	// output file ("" for [backends.DefaultOutputFile]). A backend that
	// fills them in at run time passes its placeholders. They are ignored
	// for a container task.
	Step, Input, OutputFile string
	// Rewrite, if set, maps each command, arg and env value of a container
	// task, for a backend that turns {{.Field}} placeholders into its own
	// references (and fills {{outputs.Field}} in with the output paths);
	// nil keeps them as they are.
	Rewrite func(string) string
	// Env is more environment of a Go task (the task mode's artifact
	// variables, see [backends.ArtifactsEnv]); ignored for a container task.
	Env []corev1.EnvVar
	// ServiceAccount is the step's own ServiceAccount, [AccessName] of the
	// plan and step, for a step whose task has task.Access; required
	// then, and ignored otherwise.
	ServiceAccount string
}

// ErrNoServiceAccount is wrapped by the error [Spec] returns for a step
// with task.Access whose Invocation names no ServiceAccount.
var ErrNoServiceAccount = errors.New("kubepod: no service account for a step with access")

// Spec returns the pod that runs step s: one container, named
// ContainerName, with the step's image ([Options.ImageOf]), its resolved
// requests and limits, the container security context (with the task's
// security override, [task.Security], over it) and, for a Go task,
// Options.Command with the task-mode arguments of inv, the termination
// message at [backends.TerminationLog] and [backends.TerminationLogEnv]
// naming it, inv.Env, and the environment of Options.ArtifactSecret; for a container task, its command, args and env (through
// inv.Rewrite). The pod has restartPolicy Never (retries are the
// backend's), the service account and pod security context of opts, the
// step's placement, a memory-backed /dev/shm when the profile asks for
// shared memory, and the step's timeout, rounded up to whole seconds, as
// activeDeadlineSeconds, so it bounds each attempt. A step whose task has
// task.Access runs as inv.ServiceAccount instead, with its token mounted
// (automountServiceAccountToken true), so that its code reaches the API
// server with exactly the rights [AccessOf] grants it.
//
// The result shares no memory with s or opts. opts may be nil.
func Spec(opts *Options, s *backends.Step, inv Invocation) (corev1.PodSpec, error) {
	image := opts.ImageOf(s.Task)
	if image == "" {
		return corev1.PodSpec{}, fmt.Errorf("kubepod: step %q: %w; set the backend's Options.Pod.Image (the image holding the pipeline program) or the task's WithImage", s.Name, ErrNoImage)
	}
	if opts == nil {
		opts = &Options{}
	}
	r := &s.Resolved
	ctr := corev1.Container{
		Name:            ContainerName,
		Image:           image,
		ImagePullPolicy: opts.ImagePullPolicy,
		Resources:       corev1.ResourceRequirements{Requests: r.Requests, Limits: r.Limits},
		SecurityContext: opts.ContainerSecurity(),
	}
	if s.Task.Kind == task.KindContainer {
		containerCommand(&ctr, s.Task, inv.Rewrite)
	} else {
		ctr.Command = opts.Command
		ctr.Args = backends.InvokeArgs(inv.Step, inv.Input, inv.OutputFile)
		// The task mode writes a failed task's error there: the
		// attempt's message.
		ctr.TerminationMessagePath = backends.TerminationLog
		ctr.Env = append([]corev1.EnvVar{{Name: backends.TerminationLogEnv, Value: backends.TerminationLog}}, inv.Env...)
		if opts.ArtifactSecret != "" {
			ctr.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: opts.ArtifactSecret}}}}
		}
	}
	pod := corev1.PodSpec{
		RestartPolicy:      corev1.RestartPolicyNever,
		ServiceAccountName: opts.ServiceAccountName,
		SecurityContext:    opts.PodSecurity(),
		NodeSelector:       r.Placement.NodeSelector,
		Tolerations:        r.Placement.Tolerations,
		Affinity:           r.Placement.Affinity,
	}
	switch {
	case len(s.Task.Access) > 0:
		if inv.ServiceAccount == "" {
			return corev1.PodSpec{}, fmt.Errorf("kubepod: step %q: %w; pass AccessName(plan.Name, step.Name) as Invocation.ServiceAccount", s.Name, ErrNoServiceAccount)
		}
		// The step's code talks to the API server, as its own account.
		pod.ServiceAccountName = inv.ServiceAccount
		pod.AutomountServiceAccountToken = ptr.To(true)
	case opts.ServiceAccountName == "":
		// Steps do not talk to the API server.
		pod.AutomountServiceAccountToken = ptr.To(false)
	}
	if q := r.SharedMemory; q != nil {
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: ShmVolume, VolumeSource: corev1.VolumeSource{
			EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: q},
		}})
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: ShmVolume, MountPath: ShmPath})
	}
	if s.Task.Timeout > 0 {
		pod.ActiveDeadlineSeconds = ptr.To(int64(math.Ceil(s.Task.Timeout.Seconds())))
	}
	applySecurity(pod.SecurityContext, ctr.SecurityContext, s.Task.Security)
	pod.Containers = []corev1.Container{ctr}
	// Everything above that came from s or opts (maps, slices, pointers)
	// is copied here at once, so no field can be missed.
	return *pod.DeepCopy(), nil
}

// containerCommand sets the command, args and env of a container task,
// each value through rewrite when it is not nil.
func containerCommand(ctr *corev1.Container, t task.Spec, rewrite func(string) string) {
	if rewrite == nil {
		rewrite = func(s string) string { return s }
	}
	for _, s := range t.Command {
		ctr.Command = append(ctr.Command, rewrite(s))
	}
	for _, s := range t.Args {
		ctr.Args = append(ctr.Args, rewrite(s))
	}
	for _, e := range t.Env {
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: e.Name, Value: rewrite(e.Value)})
	}
}

// CheckStore returns an error when the artifact store root cannot be
// shared by a run's pods: a mem:// store lives in one process. A
// file:// store works only where every pod mounts the same directory at
// that path (a shared volume), which the backends cannot check.
func CheckStore(root string) error {
	if strings.HasPrefix(root, "mem:") {
		return fmt.Errorf("the artifact store %s is in the memory of one process, which the run's pods cannot share; use a bucket (s3://, gs://, azblob://)", root)
	}
	return nil
}
