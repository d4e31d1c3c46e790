package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"reflect"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/internal/field"
)

// Func predicts with a loaded model: one input, one output. It must be
// safe for concurrent use: the server calls it from one goroutine per
// request.
type Func[In, Out any] func(ctx context.Context, in In) (Out, error)

// Predictor is a model server written in Go: how to load a model's
// bytes, and how to predict with it. In and Out are the request and the
// response of one prediction, as JSON; the server derives from them the
// Open Inference Protocol's tensors, the OpenAPI document and the try-it
// page (see "The Go predictor" in the package documentation).
//
// A Predictor is data; serve it with [NewServer], or [Register] it so
// that "prog serve" can serve it.
type Predictor[In, Out any] struct {
	// Name is the model's name in the server's paths,
	// /v2/models/{Name}/infer: a lower-case letter or digit followed by
	// lower-case letters, digits, '-', '_' or '.'.
	Name string
	// Load loads the model m (read its bytes with [OpenModel] or
	// [ReadModel], which check them against m.Digest) and returns the
	// function that predicts with it. The server calls it once, before
	// it reports ready; an error from it stops the server.
	Load func(ctx context.Context, m Model) (Func[In, Out], error)
	// Pre, if set, checks and prepares an input before the prediction:
	// scaling, defaults, range checks. An error from it is the client's:
	// the server answers 400 with its message.
	Pre func(ctx context.Context, in In) (In, error)
	// Post, if set, turns the prediction into the response: a label for
	// a class index, a threshold. It sees the (prepared) input too. An
	// error from it is the server's: 500.
	Post func(ctx context.Context, in In, out Out) (Out, error)
	// Example is an input to show: the try-it page fills its form with
	// it and the OpenAPI document gives it as the request's example.
	// The zero value shows the zero input.
	Example In
	// Description says what the model predicts, for the OpenAPI
	// document and the try-it page.
	Description string
}

// InputError is an error about the input of a prediction: the server
// answers 400 with it instead of 500. Return one from [Func] or
// [Predictor.Pre] to say which field is wrong; any error from Pre is
// answered with 400 anyway.
type InputError struct {
	// Field is the JSON name of the field of In, "" for the whole input.
	Field string
	// Reason says what is wrong and how to fix it: "must be between 0
	// and 120".
	Reason string
}

func (e *InputError) Error() string {
	if e.Field == "" {
		return "input: " + e.Reason
	}
	return "input " + e.Field + ": " + e.Reason
}

// nameRE is the form of a predictor's name: one path segment, safe in a
// URL and a Prometheus label.
var nameRE = regexp.MustCompile(`^[a-z0-9][-a-z0-9_.]*$`)

// validate checks p with paths under root and returns the error list's
// error.
func (p *Predictor[In, Out]) validate(root *field.Path) error {
	var errs field.List
	switch {
	case p.Name == "":
		errs.Add(field.Required(root.Child("name"), "give the model's name in the server's paths, e.g. %q", "churn"))
	case len(p.Name) > 63:
		errs.Add(field.TooLong(root.Child("name"), p.Name, 63))
	case !nameRE.MatchString(p.Name):
		errs.Add(field.Invalid(root.Child("name"), p.Name, "give a lower-case letter or digit followed by lower-case letters, digits, '-', '_' or '.'"))
	}
	if p.Load == nil {
		errs.Add(field.Required(root.Child("load"), "give the function that loads the model and returns its predict function"))
	}
	for _, t := range []struct {
		name string
		t    reflect.Type
	}{{"In", reflect.TypeFor[In]()}, {"Out", reflect.TypeFor[Out]()}} {
		if err := checkType(t.t); err != nil {
			errs.Add(field.Invalid(root.Child(strings.ToLower(t.name)), t.t.String(), "%s must be a type that JSON encodes: %v", t.name, err))
		}
	}
	return errs.Err()
}

// checkType reports a type JSON cannot encode or decode: a channel, a
// function, a complex number, an interface. The check follows structs,
// slices, arrays, pointers and maps.
func checkType(t reflect.Type) error {
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, at string) error
	walk = func(t reflect.Type, at string) error {
		if seen[t] {
			return nil
		}
		seen[t] = true
		if t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonUnmarshaler) {
			return nil
		}
		switch t.Kind() {
		case reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
			return fmt.Errorf("%s is a %s", cmpOr(at, t.String()), t.Kind())
		case reflect.Interface:
			if t.NumMethod() > 0 { // JSON decodes into any, not into an interface with methods
				return fmt.Errorf("%s is an interface with methods (%s); use a concrete type, or any", cmpOr(at, t.String()), t)
			}
		case reflect.Pointer, reflect.Slice, reflect.Array:
			return walk(t.Elem(), at+"[]")
		case reflect.Map:
			return walk(t.Elem(), at+"{}")
		case reflect.Struct:
			for _, f := range jsonFields(t) {
				if err := walk(f.typ, joinPath(at, f.name)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(t, "")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func joinPath(at, name string) string {
	if at == "" {
		return name
	}
	return at + "." + name
}

var (
	jsonMarshaler   = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
)

// jsonField is a field of a struct as encoding/json sees it.
type jsonField struct {
	name      string
	index     []int
	typ       reflect.Type
	omitEmpty bool // "omitempty" or "omitzero": the field is optional
}

// jsonFields returns the fields encoding/json encodes of struct type t,
// in order, with the fields of embedded structs without a JSON name
// promoted (a name given twice at the same depth is dropped, as
// encoding/json drops it).
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	var walk func(t reflect.Type, index []int, depth int)
	depthOf := map[string]int{}
	dropped := map[string]bool{}
	walk = func(t reflect.Type, index []int, depth int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(slices.Clone(index), i)
			ft := f.Type
			if f.Anonymous && name == "" {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if et.Kind() == reflect.Struct {
					if ft.Kind() == reflect.Struct { // embedded pointers are left out: they may be nil
						walk(et, idx, depth+1)
					}
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if d, ok := depthOf[name]; ok {
				if d == depth {
					dropped[name] = true
				}
				if d <= depth {
					continue
				}
				out = slices.DeleteFunc(out, func(o jsonField) bool { return o.name == name })
				delete(dropped, name) // a shallower field hides the deeper ones
			}
			depthOf[name] = depth
			omit := false
			for o := range strings.SplitSeq(opts, ",") {
				omit = omit || o == "omitempty" || o == "omitzero"
			}
			out = append(out, jsonField{name: name, index: idx, typ: ft, omitEmpty: omit || ft.Kind() == reflect.Pointer})
		}
	}
	walk(t, nil, 0)
	return slices.DeleteFunc(out, func(f jsonField) bool { return dropped[f.name] })
}

// The registry of the predictors "prog serve" knows, by name.
var (
	registryMu sync.RWMutex
	registry   = map[string]newServerFunc{}
)

// newServerFunc makes a server of a registered predictor in role r,
// serving the model under name ("" for the predictor's own);
// predictorURL is the predictor a transformer calls.
type newServerFunc func(r role, m Model, name, predictorURL string, opts *Options) (*Server, error)

// Register makes p known to "prog serve" (see the package
// documentation, "The Go predictor"), as [pipeline.RegisterCommand]
// makes a command known: call it from an init function or before
// pipeline.Main. It panics if p is not valid or a predictor of p's name
// is already registered.
func Register[In, Out any](p Predictor[In, Out]) {
	if err := p.validate(field.NewPath("predictor")); err != nil {
		panic(fmt.Sprintf("serve: Register(%q): %v", p.Name, err))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[p.Name]; dup {
		panic(fmt.Sprintf("serve: Register(%q) twice", p.Name))
	}
	registry[p.Name] = func(r role, m Model, name, predictorURL string, opts *Options) (*Server, error) {
		return NewServer(p.as(r, name, predictorURL, transformClient), m, opts)
	}
}

// registered returns the names of the registered predictors, sorted.
func registered() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func registeredServer(name string) (newServerFunc, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	f, ok := registry[name]
	return f, ok
}

// ErrNoModel is wrapped by the error of [OpenModel] when there is no
// object at the model's URI.
var ErrNoModel = errors.New("no model at this URI")

// OpenModel returns a reader of the bytes of m, from the artifact store
// its URI names (file:// or an absolute path, s3://, gs://, azblob://;
// the cloud stores need the import of package
// github.com/sluice-ml/sluice/artifact/stores).
// When m has a Digest, the reader checks the bytes against it as they
// go: its last Read returns an error wrapping [artifact.ErrCorrupt]
// instead of io.EOF when they do not match, so a loader that reads to
// the end never takes damaged bytes for good ones. A model without a
// Digest (a file made by hand) is read as it is.
func OpenModel(ctx context.Context, m Model) (io.ReadCloser, error) {
	if m.URI == "" {
		return nil, errors.New("serve: the model has no URI: give the model's artifact URI, e.g. file:///models/churn.json or s3://bucket/key")
	}
	if strings.HasPrefix(m.URI, "/") {
		m.URI = "file://" + m.URI // a local path, as artifact stores take one
	}
	if m.Digest != "" && !strings.HasPrefix(m.Digest, "sha256:") {
		return nil, fmt.Errorf("serve: model %s: digest %q is not \"sha256:\" and 64 hex digits", m.URI, m.Digest)
	}
	if sc, ok := artifact.FromContext(ctx); ok && sc.Store != nil && strings.HasPrefix(m.URI, sc.Store.URL()+"/") {
		// A model in the store of the running step (a deploy step's local
		// target): read through that store, which also reaches a mem://
		// store of this process.
		r, err := sc.Store.OpenObject(ctx, strings.TrimPrefix(m.URI, sc.Store.URL()+"/"))
		if err != nil {
			return nil, fmt.Errorf("serve: model %s: %w", m.URI, err)
		}
		return &modelReader{r: r, m: m, h: sha256.New()}, nil
	}
	u, err := url.Parse(m.URI)
	if err != nil || !slices.Contains(artifact.Schemes, u.Scheme) || u.Scheme == "mem" {
		return nil, fmt.Errorf("serve: model URI %q: give a file://, s3://, gs:// or azblob:// URI of the model's bytes", m.URI)
	}
	name := path.Base(u.Path)
	if u.Path == "" || strings.HasSuffix(u.Path, "/") || name == "/" || name == "." {
		return nil, fmt.Errorf("serve: model URI %q names no object: give the URI of the model's file, not of a directory", m.URI)
	}
	root := *u
	root.Path = path.Dir(u.Path)
	if u.Scheme == "file" {
		// The store would create a missing directory: say plainly that
		// there is no model instead.
		if _, err := os.Stat(u.Path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("serve: model %s: %w (no such file)", m.URI, ErrNoModel)
		} else if err != nil {
			return nil, fmt.Errorf("serve: model %s: %w", m.URI, err)
		}
	}
	store, err := artifact.OpenLazy(root.String())
	if err != nil {
		return nil, fmt.Errorf("serve: model %s: %w", m.URI, err)
	}
	r, err := store.OpenObject(ctx, name)
	if err != nil {
		store.Close()
		if strings.Contains(err.Error(), ": no object ") {
			return nil, fmt.Errorf("serve: model %s: %w", m.URI, ErrNoModel)
		}
		return nil, fmt.Errorf("serve: model %s: %w", m.URI, err)
	}
	return &modelReader{r: r, store: store, m: m, h: sha256.New()}, nil
}

// ReadModel returns the bytes of m, checked against its digest (see
// [OpenModel]).
func ReadModel(ctx context.Context, m Model) ([]byte, error) {
	r, err := OpenModel(ctx, m)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// modelReader reads a model's object and checks its digest at the end.
type modelReader struct {
	r     io.ReadCloser
	store *artifact.Store
	m     Model
	h     hash.Hash
	n     int64
	err   error
}

func (r *modelReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	if err == io.EOF && r.m.Digest != "" {
		if got := "sha256:" + hex.EncodeToString(r.h.Sum(nil)); got != r.m.Digest {
			err = fmt.Errorf("serve: model %s: read %d bytes hashing to %s, not the model's digest %s; the object was changed or damaged after it was written, or -digest is wrong: %w",
				r.m.URI, r.n, got, r.m.Digest, artifact.ErrCorrupt)
			return 0, r.fail(err)
		}
	}
	if err != nil {
		r.err = err
	}
	return n, err
}

func (r *modelReader) fail(err error) error {
	r.err = err
	return err
}

func (r *modelReader) Close() error {
	err := r.r.Close()
	if r.store == nil {
		return err // the store of the context's artifact scope: not ours
	}
	if cerr := r.store.Close(); err == nil {
		err = cerr
	}
	return err
}

// sluiceVersion is the version of this module in the program's build,
// for the server's metadata.
var sluiceVersion = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := ""
	if bi.Main.Path == "github.com/sluice-ml/sluice" {
		v = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/sluice-ml/sluice" {
			v = d.Version
		}
	}
	if v == "" || v == "(devel)" {
		return "devel"
	}
	return strings.TrimPrefix(v, "v")
})
