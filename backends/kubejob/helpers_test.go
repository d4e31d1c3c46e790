package kubejob_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
)

// testImage is the image of Go tasks that name none.
const testImage = "registry.example/sluice-suite:v1"

func testOptions() *kubejob.Options { return &kubejob.Options{Pod: kubepod.Options{Image: testImage}} }

// compiled is an artifact decoded strictly, document by document.
type compiled struct {
	kinds []string
	sa    corev1.ServiceAccount
	role  rbacv1.Role
	rb    rbacv1.RoleBinding
	jobs  []batchv1.Job
}

// job returns the Job of step name.
func (c *compiled) job(t *testing.T, step string) *batchv1.Job {
	t.Helper()
	for i := range c.jobs {
		if c.jobs[i].Labels[kubejob.LabelStep] == step {
			return &c.jobs[i]
		}
	}
	t.Fatalf("no Job for step %q", step)
	return nil
}

func compile(t *testing.T, p *pipeline.Pipeline, opts *kubejob.Options, co *pipeline.CompileOptions) (backends.Artifact, *compiled) {
	t.Helper()
	art, err := pipeline.Compile(t.Context(), p, kubejob.New(nil, opts), co)
	require.NoError(t, err)
	return art, check(t, art.Documents())
}

// check decodes every document strictly by its kind, fails on any field
// the schema lacks, and checks every Job: a valid name and a pod template
// that passes Pod Security "restricted".
func check(t *testing.T, docs [][]byte) *compiled {
	t.Helper()
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	require.NoError(t, err)
	c := &compiled{}
	seen := map[string]bool{}
	for _, doc := range docs {
		require.True(t, bytes.HasSuffix(doc, []byte("\n")), "document ends in a newline")
		var tm struct{ Kind string }
		require.NoError(t, yaml.Unmarshal(doc, &tm))
		c.kinds = append(c.kinds, tm.Kind)
		switch tm.Kind {
		case "ServiceAccount":
			require.NoError(t, yaml.UnmarshalStrict(doc, &c.sa), "strict decode")
		case "Role":
			require.NoError(t, yaml.UnmarshalStrict(doc, &c.role), "strict decode")
		case "RoleBinding":
			require.NoError(t, yaml.UnmarshalStrict(doc, &c.rb), "strict decode")
		case "Job":
			var j batchv1.Job
			require.NoError(t, yaml.UnmarshalStrict(doc, &j), "strict decode")
			require.Empty(t, validation.IsDNS1123Label(j.Name), "Job name %q", j.Name)
			require.False(t, seen[j.Name], "duplicate Job name %q", j.Name)
			seen[j.Name] = true
			res := policy.AggregateCheckResults(ev.EvaluatePod(
				api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()},
				&j.Spec.Template.ObjectMeta, &j.Spec.Template.Spec))
			require.True(t, res.Allowed, "Job %s fails Pod Security restricted: %s", j.Name, res.ForbiddenDetail())
			c.jobs = append(c.jobs, j)
		default:
			t.Fatalf("unexpected kind %q", tm.Kind)
		}
	}
	return c
}
