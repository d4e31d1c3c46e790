// Package e2e runs Sluice's pipelines on a real Kubernetes control plane
// (see internal/testcluster): the quickstart and the conformance
// scenarios on the argo and kubejob backends, compared with the local
// backend, hyperparameter searches (internal/hpocase, TestSearch), placement
// on node pools, preemption, a killed orchestrator, and every compiled
// manifest against the real API server.
//
//	SLUICE_E2E_BIN=$(tools/e2e/build) go test ./e2e/
//
// Without SLUICE_E2E_BIN the tests skip and say so.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	argoclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sluice-ml/sluice/internal/naming"
	"github.com/sluice-ml/sluice/internal/testcluster"
)

// The cluster all tests of the package share, and the programs its pods
// run.
var (
	cl *testcluster.Cluster
	// skipReason is why the tests skip, when they do.
	skipReason string
	// progs maps a program name to its binary.
	progs = map[string]string{}
)

// Images the pods ask for, and the programs that play them.
const (
	imageQuickstart = "ghcr.io/sluice-ml/quickstart:latest"
	imageE2E        = "sluice.test/e2e:latest"
)

var keep = flag.Bool("keep", false, "keep the cluster's directory (logs, pods' files) after the run")

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if !needsCluster() {
		skipReason = "the cluster is started only when a test or benchmark that needs it runs"
		return m.Run()
	}
	bin, skip, err := testcluster.BinDir()
	if err != nil {
		if !skip {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		skipReason = err.Error()
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "sluice-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if !*keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "e2e: keeping", dir)
	}
	start := time.Now()
	for name, pkg := range map[string]string{
		"quickstart": "github.com/sluice-ml/sluice/examples/quickstart",
		"e2eprog":    "github.com/sluice-ml/sluice/e2e/internal/e2eprog",
	} {
		out := filepath.Join(dir, "bin", name)
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: building %s: %v\n", pkg, err)
			return 1
		}
		progs[name] = out
	}
	fmt.Fprintf(os.Stderr, "e2e: programs built in %.1fs\n", time.Since(start).Seconds())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := testcluster.Start(ctx, testcluster.Options{
		BinDir:  bin,
		Argo:    true,
		KServe:  true,
		Dir:     filepath.Join(dir, "cluster"),
		KeepDir: *keep,
		Images: map[string]testcluster.Image{
			imageQuickstart: {Program: progs["quickstart"], Entrypoint: []string{"/ko-app/quickstart"}},
			imageE2E:        {Program: progs["e2eprog"], Entrypoint: []string{"/ko-app/e2eprog"}},
		},
		ControllerQPS: controllerQPS(),
		Logf:          func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the cluster:", err)
		return 1
	}
	cl = c
	code := m.Run()
	var total int64
	rss := cl.PeakRSS()
	var parts []string
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range rss {
			if !yield(k) {
				return
			}
		}
	}) {
		total += rss[name]
		parts = append(parts, fmt.Sprintf("%s %d MiB", name, rss[name]>>20))
	}
	fmt.Fprintf(os.Stderr, "e2e: peak RSS of the stack %d MiB (%s); %d pods run by the test kubelet\n",
		total>>20, strings.Join(parts, ", "), cl.Kubelet.Started())
	if err := cl.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: stopping the cluster:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// clusterBenchmarks are the benchmarks that need the cluster.
var clusterBenchmarks = []string{"BenchmarkKubejobOrchestration", "BenchmarkMakespan"}

// needsCluster reports whether the run may need the cluster: not when it
// runs no test (-run '^$') and only benchmarks that start their own
// servers (BenchmarkS3Artifact).
func needsCluster() bool {
	if flag.Lookup("test.run").Value.String() != "^$" {
		return true
	}
	bench := flag.Lookup("test.bench").Value.String()
	if bench == "" {
		return false
	}
	top, _, _ := strings.Cut(bench, "/")
	re, err := regexp.Compile(top)
	if err != nil {
		return true
	}
	return slices.ContainsFunc(clusterBenchmarks, re.MatchString)
}

// need skips t when there is no cluster.
func need(t *testing.T) {
	t.Helper()
	if cl == nil {
		t.Skip(skipReason)
	}
}

// argoClient is a client of Argo's API on the test control plane.
func argoClient(t testing.TB) *argoclient.Clientset {
	t.Helper()
	ac, err := argoclient.NewForConfig(cl.Config)
	require.NoError(t, err)
	return ac
}

// namespace creates a namespace for t (enforcing Pod Security
// "restricted" when restricted) and returns its name and a kubeconfig
// whose context points at it.
func namespace(t testing.TB, restricted bool) (ns, kubeconfig string) {
	t.Helper()
	ns = naming.Sanitize(strings.ToLower(t.Name()))
	if len(ns) > 50 {
		ns = ns[:50]
	}
	ns = strings.Trim(ns, "-")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cl.Namespace(ctx, ns, restricted); err != nil {
		t.Fatalf("namespace %s: %v", ns, err)
	}
	cfg, err := clientcmd.LoadFromFile(cl.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Contexts {
		c.Namespace = ns
	}
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	return ns, kubeconfig
}

// result is what a program run printed and how it exited.
type result struct {
	stdout, stderr string
	code           int
}

// runProg runs program name with args, KUBECONFIG=kubeconfig (when not
// empty) and TMPDIR in the test's temporary dir.
func runProg(t *testing.T, ctx context.Context, name, kubeconfig string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(ctx, progs[name], args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	if kubeconfig != "" {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+kubeconfig)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return r
}

// controllerQPS is $SLUICE_E2E_CONTROLLER_QPS, the client budget of
// kube-controller-manager and of Argo's controller, for measuring at
// another one (20 is both controllers' upstream default); unset or
// invalid means testcluster.DefaultControllerQPS.
func controllerQPS() int {
	n, _ := strconv.Atoi(os.Getenv("SLUICE_E2E_CONTROLLER_QPS"))
	return max(n, 0)
}
