package argo_test

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/pipeline"
)

// apiServer is the part of a Kubernetes API server with Argo's CRD that
// Submit, Watch and Cancel use: create, get, watch (a chunked stream of
// JSON watch events) and merge-patch Workflows, kept in a map. A watch
// plays the controller: it moves the workflow to Running and then to
// Succeeded, with the node of its one step, and sends both changes.
type apiServer struct {
	t        *testing.T
	token    string
	mu       sync.Mutex
	rv       int
	wfs      map[string]*wfv1.Workflow // "namespace/name" -> workflow
	requests []string                  // "VERB path" in order
	watching bool                      // a watch is open
	read     chan struct{}             // a get while watching
}

const wfPrefix = "/apis/argoproj.io/v1alpha1/namespaces/"

func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}`, http.StatusUnauthorized)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, wfPrefix)
	ns, rest, _ := strings.Cut(rest, "/")
	coll, name, _ := strings.Cut(rest, "/")
	if !ok || coll != "workflows" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && name == "":
		var wf wfv1.Workflow
		if err := json.NewDecoder(r.Body).Decode(&wf); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		if wf.Name == "" {
			wf.Name = wf.GenerateName + "x7k2p"
		}
		wf.Namespace = ns
		s.rv++
		wf.ResourceVersion = strconv.Itoa(s.rv)
		s.wfs[ns+"/"+wf.Name] = &wf
		s.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		s.write(w, &wf)
	case r.Method == http.MethodGet && name != "":
		// The read is signalled once the workflow is read: the watch
		// changes it next, and this read must not see that change (the
		// client would see the run end without its running state).
		wf := s.get(ns, name)
		s.mu.Lock()
		if s.watching {
			select {
			case s.read <- struct{}{}:
			default:
			}
		}
		s.mu.Unlock()
		if wf != nil {
			s.write(w, wf)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"workflows %q not found"}`, name)
	case r.Method == http.MethodGet && r.URL.Query().Get("watch") == "true":
		sel := r.URL.Query().Get("fieldSelector")
		s.watch(w, r, ns, strings.TrimPrefix(sel, "metadata.name="))
	case r.Method == http.MethodPatch && name != "":
		body, _ := io.ReadAll(r.Body)
		var patch struct {
			Spec struct {
				Shutdown wfv1.ShutdownStrategy `json:"shutdown"`
			} `json:"spec"`
		}
		require.NoError(s.t, json.Unmarshal(body, &patch))
		require.Equal(s.t, "application/merge-patch+json", r.Header.Get("Content-Type"))
		wf := s.update(ns, name, func(wf *wfv1.Workflow) { wf.Spec.Shutdown = patch.Spec.Shutdown })
		s.write(w, wf)
	default:
		http.Error(w, "unexpected request", http.StatusMethodNotAllowed)
	}
}

func (s *apiServer) get(ns, name string) *wfv1.Workflow {
	s.mu.Lock()
	defer s.mu.Unlock()
	if wf, ok := s.wfs[ns+"/"+name]; ok {
		return wf.DeepCopy()
	}
	return nil
}

func (s *apiServer) update(ns, name string, f func(*wfv1.Workflow)) *wfv1.Workflow {
	s.mu.Lock()
	defer s.mu.Unlock()
	wf := s.wfs[ns+"/"+name]
	f(wf)
	s.rv++
	wf.ResourceVersion = strconv.Itoa(s.rv)
	return wf.DeepCopy()
}

func (s *apiServer) write(w io.Writer, v any) {
	require.NoError(s.t, json.NewEncoder(w).Encode(v))
}

// watch streams the workflow's changes as the controller makes them. It
// finishes the workflow only once the client has read it while watching
// (Watch reads it again after starting a watch), so that the last change
// reaches the client through the stream.
func (s *apiServer) watch(w http.ResponseWriter, r *http.Request, ns, name string) {
	if s.get(ns, name) == nil {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.watching = true
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	flush := func(wf *wfv1.Workflow) {
		s.write(w, metav1.WatchEvent{Type: "MODIFIED", Object: runtimeRaw(s.t, wf)})
		w.(http.Flusher).Flush()
	}
	w.(http.Flusher).Flush()
	node := wfv1.NodeStatus{ID: "n1", Name: name + ".inc-0", DisplayName: "inc-0", Type: wfv1.NodeTypePod, Phase: wfv1.NodeRunning}
	flush(s.update(ns, name, func(wf *wfv1.Workflow) {
		wf.Status = wfv1.WorkflowStatus{Phase: wfv1.WorkflowRunning, Nodes: wfv1.Nodes{"n1": node}}
	}))
	select {
	case <-s.read:
	case <-time.After(10 * time.Second):
		s.t.Error("Watch did not read the workflow after starting its watch")
	case <-r.Context().Done():
		return
	}
	node.Phase = wfv1.NodeSucceeded
	node.Outputs = &wfv1.Outputs{Parameters: []wfv1.Parameter{{Name: "o", Value: wfv1.AnyStringPtr(`{"V":1}`)}}}
	flush(s.update(ns, name, func(wf *wfv1.Workflow) {
		wf.Status = wfv1.WorkflowStatus{Phase: wfv1.WorkflowSucceeded, Nodes: wfv1.Nodes{"n1": node}}
	}))
	<-r.Context().Done() // until the client stops watching
}

func runtimeRaw(t *testing.T, wf *wfv1.Workflow) runtime.RawExtension {
	b, err := json.Marshal(wf)
	require.NoError(t, err)
	return runtime.RawExtension{Raw: b}
}

// writeKubeconfig writes a kubeconfig for srv (its CA, the token, the
// context's namespace ml) and returns its path.
func writeKubeconfig(t *testing.T, srv *httptest.Server, token string) string {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	kubeconfig := filepath.Join(t.TempDir(), "config")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: `+srv.URL+`
    certificate-authority-data: `+base64.StdEncoding.EncodeToString(ca)+`
contexts:
- name: test
  context:
    cluster: test
    namespace: ml
    user: test
current-context: test
users:
- name: test
  user:
    token: `+token+`
`), 0o600))
	return kubeconfig
}

// NewFromKubeconfig, and New without a client on its first Submit, build
// the real REST client and typed clientset from a kubeconfig (server, CA,
// token, the context's namespace) and run a workflow end to end against
// an API server on 127.0.0.1: submit, watch to completion through a
// streamed watch, cancel.
func TestNewFromKubeconfig(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		t.Run(map[bool]string{false: "NewFromKubeconfig", true: "NewWithoutClient"}[lazy], func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			api := &apiServer{t: t, token: "s3cret", wfs: map[string]*wfv1.Workflow{}, read: make(chan struct{}, 1)}
			// TLS: client-go sends credentials only over TLS.
			srv := httptest.NewTLSServer(api)
			defer srv.Close()
			kubeconfig := writeKubeconfig(t, srv, "s3cret")

			var b *argo.Backend
			if lazy {
				// Compiling needs no cluster: the kubeconfig is read on
				// the first Submit.
				noKubeconfig(t)
				b = argo.New(nil, testOptions())
			} else {
				var err error
				b, err = argo.NewFromKubeconfig(kubeconfig, testOptions())
				require.NoError(t, err)
			}
			art, err := pipeline.Compile(t.Context(), chain(1), b, nil)
			require.NoError(t, err)
			if lazy {
				t.Setenv("KUBECONFIG", kubeconfig)
			}

			id, err := b.Submit(t.Context(), art, &backends.SubmitOptions{})
			require.NoError(t, err)
			assert.Equal(t, "chain-x7k2p", id)

			var phases []backends.Phase
			st, err := b.Watch(t.Context(), id, &backends.WatchOptions{Progress: func(s *backends.RunStatus) { phases = append(phases, s.Phase) }})
			require.NoError(t, err)
			assert.Equal(t, backends.PhaseSucceeded, st.Phase)
			require.Len(t, st.Steps, 1)
			assert.Equal(t, "inc-0", st.Steps[0].Name)
			assert.JSONEq(t, `{"V":1}`, string(st.Steps[0].Output))
			assert.Equal(t, []backends.Phase{backends.PhasePending, backends.PhaseRunning, backends.PhaseSucceeded}, phases,
				"progress streamed from the watch")

			require.NoError(t, b.Cancel(t.Context(), id))
			assert.Equal(t, wfv1.ShutdownStrategyStop, api.get("ml", id).Spec.Shutdown)

			api.mu.Lock()
			reqs := api.requests
			api.mu.Unlock()
			// Submit first reads the namespace for its Pod Security level
			// (this server has none: not checked), then creates the
			// workflow.
			require.GreaterOrEqual(t, len(reqs), 2)
			assert.Equal(t, "GET /api/v1/namespaces/ml", reqs[0], "the Kubernetes client of the same kubeconfig")
			for _, r := range reqs[1:] {
				assert.Contains(t, r, wfPrefix+"ml/workflows", "the kubeconfig context's namespace")
			}
			assert.Equal(t, "POST "+wfPrefix+"ml/workflows", reqs[1])

			// Another token is refused, and the API's error comes back raw.
			other := writeKubeconfig(t, srv, "wrong")
			if lazy {
				t.Setenv("KUBECONFIG", other)
				b = argo.New(nil, nil)
			} else {
				b, err = argo.NewFromKubeconfig(other, nil)
				require.NoError(t, err)
			}
			_, err = b.Submit(t.Context(), art, &backends.SubmitOptions{})
			assert.True(t, apierrors.IsUnauthorized(err), "got %v", err)

			missing := filepath.Join(t.TempDir(), "missing")
			if lazy {
				t.Setenv("KUBECONFIG", missing)
				_, err = argo.New(nil, nil).Submit(t.Context(), art, &backends.SubmitOptions{})
				assert.ErrorContains(t, err, "KUBECONFIG", "nothing to connect to")
			} else {
				_, err = argo.NewFromKubeconfig(missing, nil)
				assert.Error(t, err, "a kubeconfig path that does not exist")
			}
		})
	}
}

// The Options.Pod.Namespace given wins over the kubeconfig context's.
func TestNewWithoutClientKeepsTheNamespaceGiven(t *testing.T) {
	api := &apiServer{t: t, token: "s3cret", wfs: map[string]*wfv1.Workflow{}, read: make(chan struct{}, 1)}
	srv := httptest.NewTLSServer(api)
	defer srv.Close()
	t.Setenv("KUBECONFIG", writeKubeconfig(t, srv, "s3cret"))
	o := testOptions()
	o.Pod.Namespace = "team-a"
	b := argo.New(nil, o)
	art, err := pipeline.Compile(t.Context(), chain(1), b, nil)
	require.NoError(t, err)
	_, err = b.Submit(t.Context(), art, &backends.SubmitOptions{})
	require.NoError(t, err)
	api.mu.Lock()
	defer api.mu.Unlock()
	assert.Equal(t, []string{"GET /api/v1/namespaces/team-a", "POST " + wfPrefix + "team-a/workflows"}, api.requests)
}
