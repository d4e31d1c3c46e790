package task_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

func ptr[T any](v T) *T { return &v }

func TestSecurityValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		sec  task.Security
		want []key
	}{
		{"empty", task.Security{}, nil},
		{"root", task.Security{RunAsUser: ptr[int64](0)}, nil},
		{"root, runAsNonRoot false", task.Security{RunAsUser: ptr[int64](0), RunAsNonRoot: ptr(false)}, nil},
		{"user and groups", task.Security{RunAsUser: ptr[int64](1000), RunAsGroup: ptr[int64](0), FSGroup: ptr[int64](2000), SupplementalGroups: []int64{1, 2}, ReadOnlyRootFilesystem: ptr(true)}, nil},
		{"contradiction", task.Security{RunAsUser: ptr[int64](0), RunAsNonRoot: ptr(true)}, []key{{"security.runAsNonRoot", pipeline.ErrorTypeInvalid}}},
		{"ranges", task.Security{RunAsUser: ptr[int64](-1), RunAsGroup: ptr[int64](1 << 31), FSGroup: ptr[int64](-5), SupplementalGroups: []int64{7, -1}}, []key{
			{"security.runAsUser", pipeline.ErrorTypeInvalid}, {"security.runAsGroup", pipeline.ErrorTypeInvalid},
			{"security.fsGroup", pipeline.ErrorTypeInvalid}, {"security.supplementalGroups[1]", pipeline.ErrorTypeInvalid},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range []task.Spec{
				task.New("t", fn).WithSecurity(tc.sec).Spec(),
				task.Container[In, Out]("c", "img").WithSecurity(tc.sec).Spec(),
			} {
				assert.Equal(t, tc.want, keys(s.Validate()))
			}
		})
	}
	err := task.New("t", fn).WithSecurity(task.Security{RunAsUser: ptr[int64](0), RunAsNonRoot: ptr(true)}).Spec().Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "contradicts runAsUser 0 (root)")
}

// WithSecurity copies: neither the caller's value nor a spec shares
// memory with the task.
func TestWithSecurityCopies(t *testing.T) {
	sec := task.Security{RunAsUser: ptr[int64](1000), SupplementalGroups: []int64{1}}
	tk := task.New("t", fn).WithSecurity(sec)
	*sec.RunAsUser, sec.SupplementalGroups[0] = 0, 9
	s := tk.Spec()
	assert.Equal(t, int64(1000), *s.Security.RunAsUser)
	assert.Equal(t, []int64{1}, s.Security.SupplementalGroups)
	*s.Security.RunAsUser = 5
	assert.Equal(t, int64(1000), *tk.Spec().Security.RunAsUser)
	assert.Nil(t, task.New("t", fn).Spec().Security)

	assert.True(t, (&task.Security{RunAsUser: ptr[int64](0)}).RunsAsRoot())
	assert.True(t, (&task.Security{RunAsNonRoot: ptr(false)}).RunsAsRoot())
	assert.False(t, (&task.Security{RunAsUser: ptr[int64](1)}).RunsAsRoot())
	assert.False(t, (*task.Security)(nil).RunsAsRoot())
}

// At the pipeline, a task's security errors are under the task.
func TestSecurityValidateInPipeline(t *testing.T) {
	p := pipeline.New("p", nil)
	pipeline.Add(p, task.New("t", fn).WithSecurity(task.Security{RunAsUser: ptr[int64](0), RunAsNonRoot: ptr(true)}), In{Data: "x"})
	fes := pipeline.FieldErrors(p.Validate())
	require.Len(t, fes, 1)
	assert.Contains(t, fes[0].Field, "security.runAsNonRoot")
	t.Log(fes[0].Error())
}
