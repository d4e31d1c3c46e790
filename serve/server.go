package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-ml/sluice/internal/field"
)

// Options are the settings of a [Server]. The zero value (or nil) gives
// the defaults.
type Options struct {
	// ShutdownTimeout bounds how long [Server.Serve] waits, once its
	// context is canceled, for the requests in flight to finish; the
	// connections still open then are closed. Zero means 25 seconds,
	// within Kubernetes' default grace period of 30 seconds.
	ShutdownTimeout time.Duration
	// DrainDelay is how long [Server.Serve] keeps accepting requests
	// after its context is canceled while it reports not ready, so that
	// load balancers stop sending requests before it stops accepting
	// them. Zero means no delay.
	DrainDelay time.Duration
	// MaxRequestBytes bounds a request's body: a larger one is answered
	// 413. Zero means 32 MiB.
	MaxRequestBytes int64
	// Logger logs the server's events: the model loaded, a predictor's
	// panic (with its stack), the drain. Nil logs nothing.
	Logger *slog.Logger
}

// The states of a server.
const (
	stateLoading int32 = iota
	stateReady
	stateFailed
	stateDraining
)

// Server serves one [Predictor] with one model over HTTP: the Open
// Inference Protocol v2, KServe's v1 protocol, Prometheus metrics, an
// OpenAPI document and a try-it page (see the package documentation).
// Make one with [NewServer]. Its methods are safe for concurrent use.
type Server struct {
	m    Model
	opts Options
	c    core
	met  *metrics
	log  *slog.Logger
	mux  *http.ServeMux

	state    atomic.Int32
	hasModel atomic.Bool // the model loaded: it predicts, even while draining
	loadMu   sync.Mutex
	loaded   bool
	loadErr  atomic.Pointer[error]

	openapi []byte
	page    []byte

	// drainHook, if set (by tests), runs when a drain has begun: the
	// server reports not ready and still accepts requests.
	drainHook func()
}

// NewServer returns a server of p with the model m. The model is loaded
// by [Server.Serve] (or [Server.Load]); until then the server answers,
// but reports not ready and refuses predictions with 503. The error
// lists every problem of p and m, with its field path.
func NewServer[In, Out any](p Predictor[In, Out], m Model, opts *Options) (*Server, error) {
	var errs field.List
	errs.AddUnder(field.NewPath("predictor"), p.validate(nil))
	if m.URI == "" {
		errs.Add(field.Required(field.NewPath("model", "uri"), "give the URI of the model's bytes, e.g. file:///models/churn.json"))
	}
	if m.Format != "" && m.Format != GoModel {
		errs.Add(field.NotSupported(field.NewPath("model", "format"), m.Format, []Format{GoModel}))
	}
	if err := errs.Err(); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	c, err := newRunner(p)
	if err != nil {
		return nil, err
	}
	s := &Server{m: m, c: c}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.ShutdownTimeout <= 0 {
		s.opts.ShutdownTimeout = 25 * time.Second
	}
	if s.opts.MaxRequestBytes <= 0 {
		s.opts.MaxRequestBytes = 32 << 20
	}
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	c.log = s.log
	s.met = newMetrics(p.Name)
	if s.openapi, err = openAPIDocument(c, m); err != nil {
		return nil, err
	}
	if s.page, err = tryItPage(c, m); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// Name returns the name of the served model.
func (s *Server) Name() string { return s.c.name() }

// Handler returns the server's HTTP handler, for tests (httptest) and
// for mounting under another server. Call [Server.Load] to make it
// ready; [Server.Serve] does.
func (s *Server) Handler() http.Handler { return s.mux }

// Ready reports whether the model is loaded and the server is not
// draining: what GET /v2/health/ready answers.
func (s *Server) Ready() bool { return s.state.Load() == stateReady }

// Load loads the model with the predictor's Load, once: later calls
// return the first call's error, or nil. The server is ready when it
// returns nil.
func (s *Server) Load(ctx context.Context) error {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if s.loaded {
		if p := s.loadErr.Load(); p != nil {
			return *p
		}
		return nil
	}
	start := time.Now()
	err := s.c.load(ctx, s.m)
	if err != nil && ctx.Err() != nil {
		return err // canceled: not the model's fault; a later call may try again
	}
	s.loaded = true
	if err != nil {
		err = fmt.Errorf("serve: loading model %s from %s: %w", s.c.name(), s.m.URI, err)
		s.loadErr.Store(&err)
		s.state.CompareAndSwap(stateLoading, stateFailed)
		s.log.Error("loading the model failed", "model", s.c.name(), "uri", s.m.URI, "error", err)
		return err
	}
	s.met.loaded(s.m)
	s.hasModel.Store(true)
	s.state.CompareAndSwap(stateLoading, stateReady)
	s.log.Info("model loaded", "model", s.c.name(), "uri", s.m.URI, "version", s.m.Version, "took", time.Since(start))
	return nil
}

// Serve serves on l until ctx is canceled, loading the model meanwhile;
// it closes l. When ctx is canceled it drains: it reports not ready,
// waits Options.DrainDelay, stops accepting connections and waits up to
// Options.ShutdownTimeout for the requests in flight. It returns nil
// after a drain, the load error if the model cannot be loaded (after
// draining too), or the listener's error.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// Requests must outlive ctx: they finish during the drain.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()
	lctx, stopLoad := context.WithCancel(ctx)
	loaded := make(chan error, 1)
	go func() { loaded <- s.Load(lctx) }()

	var err error
	loading, serving := loaded, served
	for wait := true; wait; {
		select {
		case <-ctx.Done():
			wait = false
		case err = <-loading:
			loading = nil
			wait = err == nil
		case serr := <-serving:
			serving = nil
			if !errors.Is(serr, http.ErrServerClosed) {
				err = serr
			}
			wait = false
		}
	}
	stopLoad()
	if loading != nil {
		<-loading // Load honours lctx; a Load that ignores it is waited for
	}
	s.state.Store(stateDraining)
	s.met.ready.Set(0)
	s.log.Info("draining", "model", s.c.name(), "cause", context.Cause(ctx))
	if s.drainHook != nil {
		s.drainHook()
	}
	if s.opts.DrainDelay > 0 && ctx.Err() != nil {
		t := time.NewTimer(s.opts.DrainDelay)
		<-t.C
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	if serr := hs.Shutdown(sctx); serr != nil {
		s.log.Warn("requests still in flight at the end of the shutdown timeout were cut", "error", serr)
		hs.Close()
	}
	if serving != nil {
		if serr := <-serving; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
	}
	return err
}

// routes sets up the server's handlers.
func (s *Server) routes() {
	s.mux = http.NewServeMux()
	handle := func(pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
		s.mux.Handle(pattern, s.instrument(pattern, h))
	}
	handle("GET /v2/health/live", s.live)
	handle("GET /v2/health/ready", s.ready)
	handle("GET /v2", s.serverMetadata)
	handle("GET /v2/models/{model}", s.modelMetadata)
	handle("GET /v2/models/{model}/versions/{version}", s.modelMetadata)
	handle("GET /v2/models/{model}/ready", s.modelReady)
	handle("GET /v2/models/{model}/versions/{version}/ready", s.modelReady)
	handle("POST /v2/models/{model}/infer", s.infer)
	handle("POST /v2/models/{model}/versions/{version}/infer", s.infer)
	handle("GET /v1/models/{model}", s.v1Ready)
	handle("POST /v1/models/{model}", s.v1Predict) // {model} is "name:predict"
	handle("GET /openapi.json", s.serveBytes("application/json", s.openapi))
	handle("GET /{$}", s.serveBytes("text/html; charset=utf-8", s.page))
	handle("GET /static/", s.static)
	s.mux.Handle("GET /metrics", s.met.handler())
	s.mux.Handle("/", s.instrument("other", func(w http.ResponseWriter, r *http.Request) error {
		return &httpError{code: http.StatusNotFound, reason: "not_found",
			msg: fmt.Sprintf("no endpoint %s %s; see GET /openapi.json for this server's endpoints", r.Method, r.URL.Path)}
	}))
}

// httpError is an error with the status code to answer it with.
type httpError struct {
	code   int
	reason string // the errors metric's label: input, model, panic, not_ready, …
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) *httpError {
	return &httpError{code: http.StatusBadRequest, reason: "input", msg: fmt.Sprintf(format, args...)}
}

// instrument wraps h: it counts and times the request under endpoint,
// and answers an error of h as {"error": "…"} with its status.
func (s *Server) instrument(endpoint string, h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.met.inflight.Inc()
		defer s.met.inflight.Dec()
		sw := &statusWriter{ResponseWriter: w}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(sw, r.Body, s.opts.MaxRequestBytes)
		}
		if err := h(sw, r); err != nil {
			he := asHTTPError(err)
			s.met.errors.WithLabelValues(endpoint, he.reason).Inc()
			writeJSON(sw, he.code, errorBody{Error: he.msg})
		}
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		s.met.observe(endpoint, code, time.Since(start))
	})
}

func asHTTPError(err error) *httpError {
	var he *httpError
	if errors.As(err, &he) {
		return he
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &httpError{code: http.StatusRequestEntityTooLarge, reason: "input",
			msg: fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit)}
	}
	return &httpError{code: http.StatusInternalServerError, reason: "model", msg: err.Error()}
}

// statusWriter records the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

type errorBody struct {
	Error string `json:"error"`
}

// writeJSON writes v as the JSON body of a response with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "encoding the response: " + err.Error()})
	}
	writeRaw(w, code, b)
}

func writeRaw(w http.ResponseWriter, code int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
	w.Write([]byte{'\n'})
}

func (s *Server) serveBytes(contentType string, b []byte) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", contentType)
		w.Write(b)
		return nil
	}
}

func (s *Server) live(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]bool{"live": true})
	return nil
}

// notReady returns why the server is not ready, or nil.
func (s *Server) notReady() *httpError {
	switch s.state.Load() {
	case stateReady:
		return nil
	case stateLoading:
		return &httpError{code: http.StatusServiceUnavailable, reason: "not_ready", msg: fmt.Sprintf("model %s is not ready: it is still loading", s.c.name())}
	case stateFailed:
		msg := "loading it failed"
		if p := s.loadErr.Load(); p != nil {
			msg = (*p).Error()
		}
		return &httpError{code: http.StatusServiceUnavailable, reason: "not_ready", msg: fmt.Sprintf("model %s is not ready: %s", s.c.name(), msg)}
	default:
		return &httpError{code: http.StatusServiceUnavailable, reason: "not_ready", msg: fmt.Sprintf("model %s is not ready: the server is shutting down", s.c.name())}
	}
}

// canPredict returns nil if the server can predict: it is ready, or
// draining with its model loaded; else why not.
func (s *Server) canPredict() *httpError {
	he := s.notReady()
	if he != nil && s.state.Load() == stateDraining && s.hasModel.Load() {
		return nil
	}
	return he
}

type readyBody struct {
	Ready bool   `json:"ready"`
	Error string `json:"error,omitempty"`
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) error {
	if he := s.notReady(); he != nil {
		writeJSON(w, he.code, readyBody{Error: he.msg})
		return nil
	}
	writeJSON(w, http.StatusOK, readyBody{Ready: true})
	return nil
}

// checkModel checks the model name (and version) of r's path.
func (s *Server) checkModel(r *http.Request) error {
	name := r.PathValue("model")
	if name != s.c.name() {
		return &httpError{code: http.StatusNotFound, reason: "not_found", msg: fmt.Sprintf("no model %q: this server serves model %q", name, s.c.name())}
	}
	if v := r.PathValue("version"); v != "" && v != s.m.Version {
		have := "no version"
		if s.m.Version != "" {
			have = "version " + s.m.Version
		}
		return &httpError{code: http.StatusNotFound, reason: "not_found", msg: fmt.Sprintf("model %s has no version %q: this server serves its %s", s.c.name(), v, have)}
	}
	return nil
}

func (s *Server) modelReady(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkModel(r); err != nil {
		return err
	}
	return s.ready(w, r)
}

type serverMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

func (s *Server) serverMetadata(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, serverMetadata{Name: "sluice", Version: sluiceVersion(), Extensions: []string{}})
	return nil
}

type modelMetadata struct {
	Name     string       `json:"name"`
	Versions []string     `json:"versions"`
	Platform string       `json:"platform"`
	Inputs   []tensorMeta `json:"inputs"`
	Outputs  []tensorMeta `json:"outputs"`
}

func (s *Server) metadata() modelMetadata {
	md := modelMetadata{Name: s.c.name(), Versions: []string{}, Platform: string(GoModel)}
	if s.m.Version != "" {
		md.Versions = []string{s.m.Version}
	}
	in, out := s.c.tensors()
	for _, t := range in {
		md.Inputs = append(md.Inputs, t.meta())
	}
	for _, t := range out {
		md.Outputs = append(md.Outputs, t.meta())
	}
	return md
}

func (s *Server) modelMetadata(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkModel(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.metadata())
	return nil
}

// readBody reads r's body, bounded by the instrument's MaxBytesReader.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, badRequest("reading the request body: %v", err)
	}
	return b, nil
}

// core is the non-generic face of a Predictor[In, Out] for the server.
type core interface {
	name() string
	description() string
	load(ctx context.Context, m Model) error
	types() (in, out reflect.Type)
	example() any
	tensors() (in, out []*tensorPlan)
	// infer answers an OIP inference request; n is the batch's size.
	infer(ctx context.Context, req *inferRequest) (outs []outputTensor, n int, err error)
	// predictV1 answers a v1 request's instances; n is how many.
	predictV1(ctx context.Context, body []byte) (resp []byte, n int, err error)
}

// runner is the core of a Predictor[In, Out].
type runner[In, Out any] struct {
	p        Predictor[In, Out]
	fn       Func[In, Out] // set by load before the server is ready
	in, out  []*tensorPlan
	inStruct bool
	required []string // JSON names of In's required fields, if In is a struct
	log      *slog.Logger
}

func newRunner[In, Out any](p Predictor[In, Out]) (*runner[In, Out], error) {
	rn := &runner[In, Out]{p: p}
	var err error
	if rn.in, err = planTensors(reflect.TypeFor[In](), "input"); err != nil {
		return nil, fmt.Errorf("serve: predictor %s: In: %w", p.Name, err)
	}
	if rn.out, err = planTensors(reflect.TypeFor[Out](), "output"); err != nil {
		return nil, fmt.Errorf("serve: predictor %s: Out: %w", p.Name, err)
	}
	if t := reflect.TypeFor[In](); isRecord(t) {
		rn.inStruct = true
		for _, f := range jsonFields(t) {
			if !f.omitEmpty {
				rn.required = append(rn.required, f.name)
			}
		}
	}
	return rn, nil
}

func (rn *runner[In, Out]) name() string                     { return rn.p.Name }
func (rn *runner[In, Out]) description() string              { return rn.p.Description }
func (rn *runner[In, Out]) example() any                     { return rn.p.Example }
func (rn *runner[In, Out]) tensors() (in, out []*tensorPlan) { return rn.in, rn.out }
func (rn *runner[In, Out]) types() (in, out reflect.Type) {
	return reflect.TypeFor[In](), reflect.TypeFor[Out]()
}

func (rn *runner[In, Out]) load(ctx context.Context, m Model) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("Load panicked: %v\n%s", v, debug.Stack())
		}
	}()
	fn, err := rn.p.Load(ctx, m)
	if err != nil {
		return err
	}
	if fn == nil {
		return errors.New("Load returned a nil predict function and no error")
	}
	rn.fn = fn
	return nil
}

// predict runs Pre, the model and Post on one input. A panic is an
// error; so is an error of any of them, classified for the answer.
func (rn *runner[In, Out]) predict(ctx context.Context, in In) (out Out, err error) {
	stage := "Pre"
	defer func() {
		if v := recover(); v != nil {
			err = &httpError{code: http.StatusInternalServerError, reason: "panic",
				msg: fmt.Sprintf("model %s: %s panicked: %v", rn.p.Name, stage, v)}
			if rn.log != nil {
				rn.log.Error("the predictor panicked", "model", rn.p.Name, "stage", stage, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			}
		}
	}()
	if rn.p.Pre != nil {
		if in, err = rn.p.Pre(ctx, in); err != nil {
			return out, &httpError{code: http.StatusBadRequest, reason: "input", msg: err.Error()}
		}
	}
	stage = "the model"
	if out, err = rn.fn(ctx, in); err != nil {
		var he *httpError
		if errors.As(err, &he) {
			return out, he // a transformer's predictor's answer, status and all
		}
		var ie *InputError
		if errors.As(err, &ie) {
			return out, &httpError{code: http.StatusBadRequest, reason: "input", msg: err.Error()}
		}
		return out, &httpError{code: http.StatusInternalServerError, reason: "model", msg: fmt.Sprintf("model %s: %v", rn.p.Name, err)}
	}
	if rn.p.Post != nil {
		stage = "Post"
		if out, err = rn.p.Post(ctx, in, out); err != nil {
			return out, &httpError{code: http.StatusInternalServerError, reason: "model", msg: fmt.Sprintf("model %s: Post: %v", rn.p.Name, err)}
		}
	}
	return out, nil
}

// fieldList names the JSON fields of a struct type, for messages.
func fieldList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
