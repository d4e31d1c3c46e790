// Package testcluster runs a real Kubernetes control plane on 127.0.0.1
// for Sluice's end-to-end tests: etcd and kube-apiserver (through
// controller-runtime's envtest), kube-controller-manager, kube-scheduler,
// kwok for the nodes, and — when asked — Argo's workflow-controller with
// the full Argo CRDs, and KServe's controller manager with its full CRDs
// (RawDeployment mode, no ingress: [KServeConfig]; its webhooks are served
// but not registered). The binaries come from tools/e2e/build, which builds
// them from pinned, checksummed wrapper modules:
//
//	SLUICE_E2E_BIN=$(tools/e2e/build) go test ./e2e/
//
// Without SLUICE_E2E_BIN the tests that need a cluster skip, saying how to
// enable them; with SLUICE_E2E_REQUIRED=1 (as CI sets it) they fail
// instead.
//
// # Nodes
//
// Node pools mirror the clusters Sluice targets ([DefaultPools]): CPU
// nodes, A100 nodes whose GPU GKE's managed GPU stack cuts into 1g.10gb
// MIG partitions (each one nvidia.com/gpu, nodes labelled
// cloud.google.com/gke-gpu-partition-size, tainted nvidia.com/gpu), on spot
// VMs (GKE's cloud.google.com/gke-spot label and
// taint) and on demand, and CPU spot nodes. They are Node objects that
// kwok keeps Ready; their labels, taints and capacity are what the real
// scheduler places pods by.
//
// # Pods
//
// kwok plays the kubelet for pods that are not Sluice's. The pods of
// Sluice steps — pods labelled sluice.dev/run (the kubejob backend) or
// workflows.argoproj.io/workflow (Argo) — are run by [Kubelet] as host
// processes: the container's command, which is the pipeline's own program
// in task mode, with the pod's environment and with the container's
// volume mounts mapped to per-pod host directories (emptyDir, ConfigMap,
// and projected volumes: a pod's ServiceAccount token comes from the
// TokenRequest API, bound to the pod, and since a host process cannot
// read it where client-go looks, KUBECONFIG points to a kubeconfig with
// that token). It writes back what a
// kubelet would: container states and exit codes, the termination
// message (the last 4096 bytes of the file, or of the log with
// FallbackToLogsOnError), the pod's phase and conditions, a
// DisruptionTarget pod's end, activeDeadlineSeconds. For Argo pods it
// also plays Argo's executor: it posts the WorkflowTaskResult with the
// outputs the template declares. The main container of an Argo resource
// step runs Argo's real executor (argoexec resource ACTION, from the bin
// dir), in a mount namespace of its own (unshare, which needs root) where
// the executor's fixed /tmp/manifest.yaml is the pod's. So the real Go
// task code runs under the real scheduler, Job controller and Argo
// controller.
package testcluster
