package resources_test

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
)

// FuzzProfileValidate feeds arbitrary strings and numbers into a profile.
// Validate and Resolve must not panic; every problem must be a *pipeline.FieldError
// with a path; Resolve must report at least what Validate reports; and a
// successful Resolve must be deterministic.
func FuzzProfileValidate(f *testing.F) {
	f.Add("4", "16Gi", "", "1Gi", "A100-80GB", "3g.40gb", 0, 2, "mixed", "gke-a100", true, "team", "ml", "Exists")
	f.Add("500m", "1.5G", "100Gi", "", "", "", 2, 0, "", "", false, "", "", "")
	f.Add("four", "-1", "0", "1e3", "h100-94gb", "3g.48gb", 1, -1, "single", "nope", true, "bad key", "a/b", "In")
	f.Add("1e999999999", "9223372036854775807Ei", ".5", "0x10", "T4", "1g.10gb+me", -3, 1000000, "none", "h100-single", false, "-", "-", "Equal")
	f.Add("", "", "", "", "A30-24GB", "2g.12gb+me", 0, 3, "single", "", false, "nvidia.com/gpu.product", "x", "")
	f.Add("1", "1", "1", "1", "\x00", "\xff", 0, 0, "\u00e9", "cpu", true, "\u00e9", "\u00e9", "Exists")
	f.Add("1e-999999999", "1e99", "123e+45", "1E", "", "", 0, 0, "", "cpu", false, "", "", "")
	// The fuzzed pool's GPU stack is selValue: GKE's, AKS's, the device plugin's.
	f.Add("2", "8Gi", "", "", "A100-80GB", "1g.10gb", 7, 1, "gke", "mig", false, "cloud.google.com/gke-nodepool", "gke", "Exists")
	f.Add("", "", "", "", "A100-40GB", "3g.20gb", 2, 8, "aks", "mig", true, "kubernetes.azure.com/agentpool", "aks", "")
	f.Add("", "", "", "", "H100-80GB", "1g.10gb+me", 8, 8, "gke", "mig", false, "k", "nvidia", "Equal")

	f.Fuzz(func(t *testing.T, cpu, memory, ephemeral, shm, model, mig string, gpus, migCount int,
		strategy, pool string, preemptible bool, selKey, selValue, tolOp string) {
		p := resources.Profile{
			CPU: cpu, Memory: memory, EphemeralStorage: ephemeral, SharedMemory: shm,
			GPUModel: model, GPUs: gpus, MIG: mig, MIGCount: migCount, MIGStrategy: resources.MIGStrategy(strategy),
			NodePool: pool, Preemptible: preemptible,
			NodeSelector: map[string]string{selKey: selValue},
			Tolerations:  []corev1.Toleration{{Key: selKey, Operator: corev1.TolerationOperator(tolOp), Value: selValue}},
		}
		// Pools built from the same input, valid or not.
		pools := append(testPools(), resources.NodePool{
			Name: pool, Provider: resources.Provider(strategy), Spot: preemptible,
			Labels:      map[string]string{selKey: selValue},
			Node:        resources.Capacity{CPU: memory, Memory: cpu, GPUModel: model, GPUs: migCount, MIG: map[string]int{mig: gpus}},
			MIGStrategy: resources.MIGStrategy(strategy),
			GPUStack:    resources.GPUStack(selValue),
		})

		verr := p.Validate()
		checkFieldErrors(t, verr)
		checkFieldErrors(t, resources.ValidatePools(pools))

		for _, ps := range [][]resources.NodePool{nil, pools} {
			got, rerr := resources.Resolve(p, ps)
			checkFieldErrors(t, rerr)
			if rerr == nil {
				if verr != nil {
					t.Fatalf("Validate failed but Resolve did not: %v", verr)
				}
				again, _ := resources.Resolve(p, ps)
				if !reflect.DeepEqual(got, again) {
					t.Fatalf("Resolve is not deterministic for %+v", p)
				}
				continue
			}
			for _, fe := range pipeline.FieldErrors(verr) {
				if !slices.ContainsFunc(pipeline.FieldErrors(rerr), func(re *pipeline.FieldError) bool {
					return re.Field == fe.Field && re.Type == fe.Type
				}) {
					t.Fatalf("Resolve does not report %v", fe)
				}
			}
		}
		_ = resources.Merge(p, p)
	})
}

func checkFieldErrors(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	fes := pipeline.FieldErrors(err)
	if len(fes) == 0 {
		t.Fatalf("error without field errors: %v", err)
	}
	var fe *pipeline.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("errors.As cannot reach a *pipeline.FieldError in %v", err)
	}
	for _, fe := range fes {
		if fe.Field == "" || fe.Type == "" || fe.Detail == "" {
			t.Fatalf("incomplete field error %#v", fe)
		}
	}
	_ = err.Error()
}
