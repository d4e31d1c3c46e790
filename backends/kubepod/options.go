package kubepod

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-ml/sluice/task"
)

// Options are the settings every Kubernetes backend has for the pods and
// objects it compiles; a backend's own Options hold them as the field Pod.
// The zero value is ready to use; every field's zero value means the
// default described on it. A nil *Options means the zero value.
type Options struct {
	// Namespace is written into every compiled object when set, and runs
	// are submitted to it; "" leaves compiled objects without one (kubectl's
	// current namespace applies) and runs use the kubeconfig context's
	// namespace, else "default".
	Namespace string
	// ServiceAccountName is the service account of the steps' pods; ""
	// leaves the namespace's default account (for Argo, its configured
	// one), whose token [Spec] then does not mount: steps do not talk to
	// the API server. A step with task.Access runs as an account of its
	// own instead (see [AccessOf]).
	ServiceAccountName string
	// Image is the image of Go tasks whose spec names none: the image
	// holding the pipeline program. It is the only such setting (see
	// "# Images" in the package doc); a Go task without an image is an
	// error.
	Image string
	// Command is the container command of Go tasks: the path of the
	// pipeline program inside Image (/ko-app/<dir> for an image built with
	// "ko build ./<dir>"). nil leaves the image's ENTRYPOINT, which must
	// then be the program; a backend may require it (argo does).
	Command []string
	// ImagePullPolicy is set on every container when not "".
	ImagePullPolicy corev1.PullPolicy
	// PodSecurityContext replaces the default pod security context
	// ([RestrictedPodSecurityContext]).
	PodSecurityContext *corev1.PodSecurityContext
	// SecurityContext replaces the default container security context
	// ([RestrictedSecurityContext]).
	SecurityContext *corev1.SecurityContext
	// ArtifactSecret names a Secret in the run's namespace whose keys
	// become the environment of Go tasks (envFrom), for the artifact
	// store's credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
	// for s3://, GOOGLE_APPLICATION_CREDENTIALS pointing at a mounted
	// key for gs://, AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY for
	// azblob:// (see package artifact, "Stores and credentials"). The
	// manifests name the Secret, never a value. Leave it empty where the
	// platform gives pods credentials through the service account (EKS
	// IRSA or Pod Identity, GKE or Azure Workload Identity).
	ArtifactSecret string
	// Labels and Annotations are added to the compiled objects; each
	// backend's doc says which objects get them.
	Labels, Annotations map[string]string
}

// ImageOf returns the image t runs with: its own, or Options.Image for a
// Go task that names none; "" when there is none. o may be nil.
func (o *Options) ImageOf(t task.Spec) string {
	if t.Image == "" && t.Kind != task.KindContainer && o != nil {
		return o.Image
	}
	return t.Image
}
