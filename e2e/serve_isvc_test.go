package e2e

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/serve"
)

var isvcGVR = schema.GroupVersionResource{Group: "serving.kserve.io", Version: "v1beta1", Resource: "inferenceservices"}

// TestServeInferenceServiceRollout rolls an InferenceService out on the
// real API server with KServe's full CRDs; the test plays KServe's
// controller, which the test bed lacks, through the status subresource:
// it reports each new generation Ready, or, for the image "broken", not
// Ready with KServe's reason and the pods' failure. The rollout waits for
// the Ready condition of the generation it applied, and a version whose
// pods cannot pull their image fails at once, with the controller's
// reason, and is rolled back to the one before.
func TestServeInferenceServiceRollout(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	ns, _ := namespace(t, true)
	installCRDs(t, ctx, serveCRDs)
	api := cl.Dynamic().Resource(isvcGVR).Namespace(ns)

	// The controller's part: every generation it has not reported yet.
	w, err := api.Watch(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var mu sync.Mutex
	var reported []string // image@generation, as reported
	played := make(chan struct{})
	go func() {
		defer close(played)
		for ev := range w.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			og, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
			if og >= u.GetGeneration() {
				continue
			}
			ctrs, _, _ := unstructured.NestedSlice(u.Object, "spec", "predictor", "containers")
			image, _, _ := unstructured.NestedString(ctrs[0].(map[string]any), "image")
			cond := map[string]any{"type": "Ready", "status": "True", "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}
			if image == "registry.example/ranker:broken" {
				cond["status"], cond["reason"], cond["message"] = "False", "RevisionMissing", "Revision ranker-predictor-00002 failed: ImagePullBackOff"
			}
			_ = unstructured.SetNestedField(u.Object, u.GetGeneration(), "status", "observedGeneration")
			_ = unstructured.SetNestedSlice(u.Object, []any{cond}, "status", "conditions")
			if _, err := api.UpdateStatus(ctx, u, metav1.UpdateOptions{FieldValidation: "Strict"}); err != nil {
				continue // a newer generation comes with its own event
			}
			mu.Lock()
			reported = append(reported, image)
			mu.Unlock()
		}
	}()
	defer func() { w.Stop(); <-played }()

	render := func(image string) []*unstructured.Unstructured {
		target := serve.Target{Name: "ranker", Level: serve.Staging, Namespace: ns, Mode: serve.RawDeployment,
			Runtime:   serve.Runtime{Format: serve.GoModel, Image: image},
			Resources: resources.Profile{CPU: "100m", Memory: "128Mi"}}
		objs, err := target.KServe(serve.Model{URI: "s3://models/ranker/" + image, Format: serve.GoModel})
		require.NoError(t, err)
		var out []*unstructured.Unstructured
		for _, o := range objs {
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
			require.NoError(t, err)
			out = append(out, &unstructured.Unstructured{Object: u})
		}
		return out
	}
	a := &serve.Applier{Client: cl.Dynamic(), Mapper: cl.RESTMapper(), Timeout: time.Minute}
	image := func() string {
		u, err := api.Get(ctx, "ranker", metav1.GetOptions{})
		require.NoError(t, err)
		ctrs, _, _ := unstructured.NestedSlice(u.Object, "spec", "predictor", "containers")
		s, _, _ := unstructured.NestedString(ctrs[0].(map[string]any), "image")
		return s
	}

	v1 := render("registry.example/ranker:v1")
	require.NoError(t, a.Rollout(ctx, v1, nil))
	assert.Equal(t, "registry.example/ranker:v1", image())

	start := time.Now()
	err = a.Rollout(ctx, render("registry.example/ranker:broken"), v1)
	var re *serve.RolloutError
	require.True(t, errors.As(err, &re), "%v", err)
	assert.Equal(t, "ImagePullBackOff", re.Reason, "%v", err)
	assert.Less(t, time.Since(start), a.Timeout, "a pull failure does not wait for the timeout")
	assert.Contains(t, err.Error(), "RevisionMissing")
	assert.Contains(t, err.Error(), "ImagePullBackOff")
	assert.True(t, re.RolledBack, "%v", err)
	assert.Equal(t, "registry.example/ranker:v1", image(), "rolled back")

	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, reported, "registry.example/ranker:broken", "the controller saw the broken version")
}
