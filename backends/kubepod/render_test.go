package kubepod_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-ml/sluice/backends/kubepod"
)

// Render leaves out what the Go types marshal although it says nothing,
// and writes user maps as they are.
func TestRender(t *testing.T) {
	j := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: "j", Labels: map[string]string{"name": "", "b": "2", "a": "1"}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Image: "img", Args: []string{"-n", "3"}}},
		}}},
	}
	got, err := kubepod.Render(j)
	require.NoError(t, err)
	assert.Equal(t, `apiVersion: batch/v1
kind: Job
metadata:
  labels:
    a: "1"
    b: "2"
    name: ""
  name: j
spec:
  template:
    spec:
      containers:
      - args:
        - -n
        - "3"
        image: img
`, string(got))
	again, err := kubepod.Render(j)
	require.NoError(t, err)
	assert.Equal(t, got, again)
}

// A large document may be handed the renderer's own buffer; no later
// render, large or small, writes into a document returned before.
func TestRenderLargeDocumentsStayApart(t *testing.T) {
	cm := func(fill byte, n int) *corev1.ConfigMap {
		return &corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "c"},
			Data:       map[string]string{"k": string(bytes.Repeat([]byte{fill}, n))},
		}
	}
	var docs [][]byte
	var want []string
	for i, n := range []int{3 << 20, 5 << 20, 100, 3 << 20, 2 << 20} {
		d, err := kubepod.Render(cm(byte('a'+i), n))
		require.NoError(t, err)
		docs = append(docs, d)
		want = append(want, string(d))
	}
	for i := range docs {
		assert.Equal(t, want[i], string(docs[i]), "document %d", i)
		assert.Contains(t, string(docs[i]), "k: "+string(bytes.Repeat([]byte{byte('a' + i)}, 10)))
	}
}
