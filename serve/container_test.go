package serve_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/serve"
)

// TestRenderedContainersRun starts the program's containers as the
// renderers made them — their arguments and environment, with PORT and
// the predictor's URL moved to free ports, as the only change — and
// calls them: the predictor serves the model without Pre and Post, the
// transformer in front runs them once, and each answers its readiness
// probe. On KServe the transformer also gets the arguments KServe
// appends to its container, and the model's name in the paths is the
// target's.
func TestRenderedContainersRun(t *testing.T) {
	m := writeModel(t, testWeights)
	for _, platform := range []serve.Platform{serve.Kubernetes, serve.KServe} {
		t.Run(string(platform), func(t *testing.T) {
			target := serve.Target{Name: "houses", Level: serve.Prod, Platform: platform,
				Runtime:     serve.Runtime{Format: serve.GoModel, Image: "registry.example/houses:v1"},
				Resources:   resources.Profile{CPU: "1", Memory: "1Gi"},
				Transformer: &serve.Transformer{Image: "registry.example/houses:v1"},
			}
			if platform == serve.KServe {
				target.Mode = serve.RawDeployment
			}
			var objs []runtime.Object
			var err error
			if platform == serve.KServe {
				objs, err = target.KServe(m)
			} else {
				objs, err = target.Kubernetes(m)
			}
			require.NoError(t, err)
			pred, tran := containers(t, objs)
			predPort, tranPort := freePort(t), freePort(t)

			predEnv := map[string]string{"PORT": predPort}
			predURL := start(t, pred, predEnv)
			tranEnv := map[string]string{"PORT": tranPort, "SLUICE_PREDICTOR_URL": "http://127.0.0.1:" + predPort}
			if platform == serve.KServe {
				// What KServe appends; its predictor host is the Service.
				tran.Args = append(tran.Args, "--model_name", "houses", "--predictor_host", "127.0.0.1:"+predPort, "--http_port", tranPort)
				delete(tranEnv, "PORT")
			}
			tranURL := start(t, tran, tranEnv)

			name := "house" // the predictor's, on Kubernetes
			if platform == serve.KServe {
				name = "houses" // the target's
			}
			for _, c := range []struct {
				ctr corev1.Container
				url string
			}{{pred, predURL}, {tran, tranURL}} {
				require.NotNil(t, c.ctr.ReadinessProbe, c.ctr.Name)
				// Ready once the model is loaded: the probe is asked
				// until it says so, as the kubelet does.
				probe := c.url + strings.TrimPrefix(c.ctr.ReadinessProbe.HTTPGet.Path, "/")
				for code, body := do(t, "GET", probe, ""); code != 200; code, body = do(t, "GET", probe, "") {
					require.Equal(t, 503, code, "%s's readiness probe: %s", c.ctr.Name, body)
					time.Sleep(10 * time.Millisecond)
				}
			}

			code, body := do(t, "POST", tranURL+"v1/models/"+name+":predict", `{"instances": [{"rooms": 2, "area": 50, "garden": true}]}`)
			assert.Equal(t, 200, code, body)
			assert.JSONEq(t, `{"predictions": [{"price": 125, "band": "low"}]}`, body, "Pre and Post ran in the transformer")
			code, body = do(t, "POST", tranURL+"v1/models/"+name+":predict", `{"instances": [{"rooms": 2, "area": -1, "garden": false}]}`)
			assert.Equal(t, 400, code, body)
			assert.Contains(t, body, "area: must be ≥ 0")
			code, body = do(t, "POST", tranURL+"v2/models/"+name+"/infer",
				`{"inputs": [{"name": "rooms", "shape": [1], "datatype": "INT64", "data": [2]}, {"name": "area", "shape": [1], "datatype": "FP64", "data": [50]}, {"name": "garden", "shape": [1], "datatype": "BOOL", "data": [true]}]}`)
			assert.Equal(t, 200, code, body)
			assert.Contains(t, body, `"low"`)

			// The predictor behind it runs neither: a negative area is
			// the transformer's to refuse, and the band its to add.
			code, body = do(t, "POST", predURL+"v1/models/"+name+":predict", `{"instances": [{"rooms": 2, "area": -1, "garden": false}]}`)
			assert.Equal(t, 200, code, body)
			assert.JSONEq(t, `{"predictions": [{"price": 23, "band": ""}]}`, body)
		})
	}
}

// containers returns the predictor's and the transformer's containers of
// a rendered target.
func containers(t *testing.T, objs []runtime.Object) (pred, tran corev1.Container) {
	t.Helper()
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.Deployment:
			cs := o.Spec.Template.Spec.Containers
			i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == "predictor" })
			j := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == "transformer" })
			require.True(t, i >= 0 && j >= 0, "the Deployment's containers: %v", cs)
			return cs[i], cs[j]
		case *serve.InferenceService:
			require.Len(t, o.Spec.Predictor.Containers, 1)
			require.NotNil(t, o.Spec.Transformer)
			require.Len(t, o.Spec.Transformer.Containers, 1)
			return o.Spec.Predictor.Containers[0], o.Spec.Transformer.Containers[0]
		}
	}
	t.Fatalf("no Deployment or InferenceService in %d objects", len(objs))
	return
}

// renderedEnv are the variables a rendered container may set; start
// clears them all before it sets a container's.
var renderedEnv = []string{"PORT", "PROTOCOL", "SLUICE_MODEL_URI", "SLUICE_MODEL_FORMAT", "SLUICE_MODEL_DIGEST",
	"SLUICE_MODEL_VERSION", "SLUICE_MODEL_NAME", "SLUICE_PREPOST", "SLUICE_PREDICTOR_URL"}

// start runs the program's command of c, with c's environment (override
// replacing some of it), until t ends, and returns the base URL it
// serves on, once it listens. The command reads its environment as it
// starts, so the next container's may be set then.
func start(t *testing.T, c corev1.Container, override map[string]string) string {
	t.Helper()
	for _, k := range renderedEnv {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for _, e := range c.Env {
		require.Nil(t, e.ValueFrom, "%s: %s comes from the API", c.Name, e.Name)
		if !slices.Contains(renderedEnv, e.Name) {
			t.Fatalf("%s sets %s, which this test does not clear", c.Name, e.Name)
		}
		t.Setenv(e.Name, e.Value)
	}
	for k, v := range override {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &lockedBuffer{}
	exited := make(chan int, 1)
	go func() {
		code := pipeline.Exec(ctx, pipeline.New("houses", nil), c.Args, pw, stderr)
		pw.Close()
		exited <- code
	}()
	t.Cleanup(func() {
		cancel()
		assert.Equal(t, pipeline.ExitOK, <-exited, "%s: %s", c.Name, stderr.String())
		io.Copy(io.Discard, pr)
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err, "%s %v: %s", c.Name, c.Args, stderr.String())
	addr := regexp.MustCompile(` on http://(?:\[::\]|0\.0\.0\.0|):(\d+)/ `).FindStringSubmatch(line)
	require.NotNil(t, addr, "%s listens on every interface: %s", c.Name, line)
	go io.Copy(io.Discard, pr)
	url := "http://127.0.0.1:" + addr[1] + "/"
	for code, _, _ := send(t.Context(), "GET", url+"v2/health/live", ""); code != 200; code, _, _ = send(t.Context(), "GET", url+"v2/health/live", "") {
		time.Sleep(10 * time.Millisecond)
	}
	return url
}

// freePort returns a port free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// "prog transform" without a predictor, or with one that is down.
func TestTransformErrors(t *testing.T) {
	for _, k := range renderedEnv {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	p := pipeline.New("houses", nil)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"transform"}, "houses transform: -predictor-url is required: the base URL of the predictor serving the model (prog serve -prepost=false), e.g. -predictor-url http://127.0.0.1:8081\n"},
		{[]string{"transform", "-predictor-url", "ftp://127.0.0.1"}, "houses transform: -predictor-url ftp://127.0.0.1: give an http:// or https:// URL\n"},
		{[]string{"transform", "--predictor_host", "p.ns", "--protocol", "grpc-v2"}, "houses transform: --protocol grpc-v2: the predictor speaks v1 or v2\n"},
	} {
		var stdout, stderr strings.Builder
		assert.Equal(t, pipeline.ExitInvalid, pipeline.Exec(t.Context(), p, tc.args, &stdout, &stderr), "%v", tc.args)
		assert.Equal(t, tc.want, stderr.String(), "%v", tc.args)
	}

	down := "http://127.0.0.1:" + freePort(t)
	url := start(t, corev1.Container{Name: "transformer", Args: []string{"transform", "-predictor-url", down, "-q"}}, map[string]string{"PORT": freePort(t)})
	// Ready once loaded (on a busy machine, after the server listens),
	// whether or not the predictor answers.
	for code, body := do(t, "GET", url+"v2/health/ready", ""); code != 200; code, body = do(t, "GET", url+"v2/health/ready", "") {
		require.Equal(t, 503, code, "the readiness probe: %s", body)
		time.Sleep(10 * time.Millisecond)
	}
	code, body := do(t, "POST", url+"v1/models/house:predict", `{"instances": [{"rooms": 2, "area": 50, "garden": true}]}`)
	assert.Equal(t, 502, code)
	assert.Contains(t, body, "model house: calling the predictor: ")
}

// lockedBuffer is a buffer a server logs to while a test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
