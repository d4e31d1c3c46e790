package testcluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"
)

// KServeNamespace is where KServe's controller reads its ConfigMap.
const KServeNamespace = "kserve"

// KServeConfig returns the data of the inferenceservice-config ConfigMap
// the harness runs KServe's controller with: KServe's defaults (from the
// pinned module, in the bin dir) with RawDeployment as the default mode,
// since the test bed has no Knative, and no ingress objects, since it has
// no Istio or Gateway: an InferenceService is a Deployment, a Service and
// an autoscaler, and its URL is its Service's.
func KServeConfig(bin string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(bin, "kserve-config", "inferenceservice.yaml"))
	if err != nil {
		return nil, fmt.Errorf("KServe's ConfigMap (rebuild with tools/e2e/build): %w", err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(b, &cm); err != nil {
		return nil, fmt.Errorf("KServe's ConfigMap: %w", err)
	}
	delete(cm.Data, "_example")
	cm.Data["deploy"] = `{"defaultDeploymentMode": "RawDeployment"}`
	var ingress map[string]any
	if err := json.Unmarshal([]byte(cm.Data["ingress"]), &ingress); err != nil {
		return nil, fmt.Errorf("KServe's ConfigMap, key ingress: %w", err)
	}
	ingress["disableIngressCreation"] = true
	ingress["disableIstioVirtualHost"] = true
	ib, _ := json.Marshal(ingress)
	cm.Data["ingress"] = string(ib)
	return cm.Data, nil
}

// startKServe runs KServe's controller manager with the admin's
// kubeconfig. Its webhooks are served (it will not start without them)
// but not registered with the API server, as a test bed without
// cert-manager does: InferenceServices are taken as sent.
func (c *Cluster) startKServe(ctx, pctx context.Context) error {
	if err := c.Namespace(ctx, KServeNamespace, false); err != nil {
		return err
	}
	data, err := KServeConfig(c.bin)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{Data: data}
	cm.Name, cm.Namespace = "inferenceservice-config", KServeNamespace
	if _, err := c.Client.CoreV1().ConfigMaps(KServeNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// controller-runtime reads the webhook server's certificate from
	// $TMPDIR/k8s-webhook-server/serving-certs.
	tmp := filepath.Join(c.Dir, "kserve-tmp")
	if err := writeServingCert(filepath.Join(tmp, "k8s-webhook-server", "serving-certs")); err != nil {
		return err
	}
	webhook, err := freePort()
	if err != nil {
		return err
	}
	probe, err := freePort()
	if err != nil {
		return err
	}
	args := []string{
		"--metrics-addr=0",
		"--webhook-port=" + strconv.Itoa(webhook),
		"--health-probe-addr=127.0.0.1:" + strconv.Itoa(probe),
		"--leader-elect=false",
	}
	env := []string{"KUBECONFIG=" + c.Kubeconfig, "TMPDIR=" + tmp, "POD_NAMESPACE=" + KServeNamespace}
	if err := c.startProc(pctx, "kserve-manager", args, env); err != nil {
		return err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(probe) + "/readyz"
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := c.exited("kserve-manager"); err != nil {
			return false, err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// writeServingCert writes a self-signed certificate for 127.0.0.1 and its
// key to dir/tls.crt and dir/tls.key.
func writeServingCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kserve-webhook"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

// freePort returns a TCP port free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
