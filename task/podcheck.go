package task

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/internal/suggest"
)

// This file holds the checks of what becomes the pod rather than the
// graph: the image reference, the command line, the environment, the
// output files, and whether the output type can travel as JSON. Each rule
// is checked once, here, with paths relative to the task.

// ReservedEnvPrefix starts the names of the environment variables that
// backends set in a task's container (SLUICE_RUN_ID, SLUICE_OUTPUT_DIR, …).
// A task may not set such a variable itself: it would hide the backend's.
const ReservedEnvPrefix = "SLUICE_"

// checkImage reports an image reference that the OCI distribution grammar
// (github.com/distribution/reference, as Docker, containerd and the
// kubelet read it) rejects. The empty reference is the caller's concern.
func checkImage(p *field.Path, ref string) *field.Error {
	if ref == "" {
		return nil
	}
	if err := parseImage(ref); err != nil {
		return field.Invalid(p, ref, "not an image reference: %v; %s", err, imageHint(ref, err))
	}
	return nil
}

// validImages remembers references that parse: a pipeline's tasks share
// a few images, and every step of every Validate checks its image.
var validImages struct {
	sync.Mutex
	refs map[string]bool
}

// maxValidImages bounds validImages; past it, references are parsed anew.
const maxValidImages = 1024

// parseImage reports why ref is no image reference, nil if it is one.
func parseImage(ref string) error {
	validImages.Lock()
	ok := validImages.refs[ref]
	validImages.Unlock()
	if ok {
		return nil
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return err
	}
	validImages.Lock()
	if validImages.refs == nil {
		validImages.refs = map[string]bool{}
	}
	if len(validImages.refs) < maxValidImages {
		validImages.refs[ref] = true
	}
	validImages.Unlock()
	return nil
}

// imageHint says how to fix a reference the grammar rejected.
func imageHint(ref string, err error) string {
	const form = "write [registry[:port]/]repository[:tag][@sha256:digest], for example \"registry.example/team/train:1.2\""
	if strings.TrimSpace(ref) != ref || strings.ContainsAny(ref, " \t\n") {
		return "remove the white space; " + form
	}
	if errors.Is(err, reference.ErrNameContainsUppercase) || strings.Contains(err.Error(), "must be lowercase") {
		name, rest := splitImage(ref)
		if fixed := strings.ToLower(name) + rest; fixed != ref {
			if _, err := reference.ParseNormalizedNamed(fixed); err == nil {
				return fmt.Sprintf("repository names are lowercase (tags may not be): use %q", fixed)
			}
		}
	}
	if strings.Contains(ref, "://") {
		return "an image reference has no scheme; drop the \"…://\" prefix"
	}
	return form
}

// splitImage splits ref into its name and the ":tag" / "@digest" after it.
func splitImage(ref string) (name, rest string) {
	end := len(ref)
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		end = i
	}
	if i := strings.LastIndexByte(ref[:end], ':'); i > strings.LastIndexByte(ref[:end], '/') {
		end = i
	}
	return ref[:end], ref[end:]
}

// checkCommandLine reports empty elements of the command and arguments: an
// empty element is almost always a variable that expanded to nothing in
// the caller, and backends disagree on whether to keep it.
func checkCommandLine(s Spec) []*field.Error {
	var errs []*field.Error
	for i, c := range s.Command {
		if c == "" {
			errs = append(errs, field.Invalid(field.NewPath("command").Index(i), c, "is empty; remove the element (to pass an empty string, write a placeholder whose value is empty)"))
		}
	}
	for i, a := range s.Args {
		if a == "" {
			errs = append(errs, field.Invalid(field.NewPath("args").Index(i), a, "is empty; remove the element (to pass an empty string, write a placeholder whose value is empty)"))
		}
	}
	return errs
}

// checkEnvNames reports environment variable names Kubernetes rejects,
// names reserved for backends, and names set twice. Empty names are
// reported by Validate as Required.
func checkEnvNames(env []EnvVar) []*field.Error {
	var errs []*field.Error
	first := make(map[string]int, len(env))
	for i, e := range env {
		if e.Name == "" {
			continue
		}
		p := field.NewPath("env").Index(i).Child("name")
		switch {
		case strings.HasPrefix(strings.ToUpper(e.Name), ReservedEnvPrefix):
			errs = append(errs, field.Forbidden(p, "%q: names starting with %s are reserved for the variables backends set; rename it", e.Name, ReservedEnvPrefix))
		default:
			if msgs := validation.IsEnvVarName(e.Name); len(msgs) > 0 {
				errs = append(errs, field.Invalid(p, e.Name, "%s; use letters, digits and '_', for example %q", strings.Join(msgs, "; "), envName(e.Name)))
			}
		}
		if j, ok := first[e.Name]; ok {
			errs = append(errs, field.Duplicate(p, e.Name, "env[%d] sets it already; set each variable once (WithEnv adds, it does not replace)", j))
			continue
		}
		first[e.Name] = i
	}
	return errs
}

// envName turns s into a conventional variable name for a suggestion.
func envName(s string) string {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "MY_VAR"
	}
	return strings.ToUpper(b.String())
}

// checkOutputs reports container outputs that cannot be produced: an Out
// that is not a struct, a field of Out with no file, a field given two
// files, and paths that are not one file inside [OutputDir] (absolute,
// clean, no "..", not a directory of another output).
func checkOutputs(s Spec) []*field.Error {
	var errs []*field.Error
	t := s.OutputType
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && t.Kind() != reflect.Struct {
		errs = append(errs, field.Invalid(field.NewPath("outputs"), s.OutputType.String(),
			"a container task writes each field of its output to a file, so Out must be a struct; wrap the value: struct{ Value %v `json:\"value\"` }", s.OutputType))
		return errs
	}
	byField := make(map[string]int, len(s.Outputs))
	for i, o := range s.Outputs {
		if j, ok := byField[o.Field]; ok && o.Field != "" {
			errs = append(errs, field.Duplicate(field.NewPath("outputs").Index(i).Child("field"), o.Field, "outputs[%d] already reads this field; give each field one file", j))
			continue
		}
		byField[o.Field] = i
	}
	for _, f := range jsonFields(s.OutputType) {
		if _, ok := byField[f.json]; !ok {
			if _, ok := byField[f.goName]; !ok {
				errs = append(errs, field.Required(field.NewPath("outputs"), "output field %q has no file to be read from; map it with WithOutput(%q, %q)", f.json, f.goName, OutputDir+"/"+f.json))
			}
		}
	}
	var good []int // outputs with a valid path, in order
outputs:
	for i, o := range s.Outputs {
		p := field.NewPath("outputs").Index(i).Child("path")
		if e := checkOutputPath(p, o); e != nil {
			errs = append(errs, e)
			continue
		}
		for _, j := range good {
			q := s.Outputs[j].Path
			switch {
			case q == o.Path:
				errs = append(errs, field.Duplicate(p, o.Path, "outputs[%d] (field %q) is read from the same file; give each output its own file", j, s.Outputs[j].Field))
				continue outputs
			case strings.HasPrefix(o.Path, q+"/") || strings.HasPrefix(q, o.Path+"/"):
				errs = append(errs, field.Invalid(p, o.Path, "outputs[%d] is read from %q: one of the two paths would have to be a directory and a file at once; give each output its own file", j, q))
				continue outputs
			}
		}
		good = append(good, i)
	}
	return errs
}

// checkOutputPath checks that an output file is one file inside OutputDir.
// Every problem of the path goes into one error, with the fixed path.
func checkOutputPath(p *field.Path, o Output) *field.Error {
	if o.Path == "" {
		return field.Required(p, "give the file the container writes field %q to, such as %q", o.Field, OutputDir+"/"+o.Field)
	}
	var why []string
	if o.Path[0] != '/' {
		why = append(why, "must be an absolute path in the container")
	}
	if strings.HasSuffix(o.Path, "/") {
		why = append(why, "names a directory; an output is one file")
	}
	if slices.Contains(strings.Split(o.Path, "/"), "..") {
		why = append(why, `must not contain ".."`)
	} else if t := strings.TrimSuffix(o.Path, "/"); o.Path[0] == '/' && t != "" && path.Clean(t) != t {
		why = append(why, fmt.Sprintf("must be clean (%q)", path.Clean(t)))
	}
	if len(why) == 0 && !strings.HasPrefix(o.Path, OutputDir+"/") {
		why = append(why, fmt.Sprintf("must be inside the output directory %s (task.OutputDir)", OutputDir))
	}
	if len(why) == 0 {
		return nil
	}
	base := path.Base(path.Clean("/" + o.Path))
	if base == "/" || base == "." || base == ".." {
		base = o.Field
	}
	return field.Invalid(p, o.Path, "%s; use %q", strings.Join(why, ", "), OutputDir+"/"+base)
}

// checkOutputType reports an output type that encoding/json cannot encode
// (a channel, a function, a complex number, an unsafe.Pointer, or a map
// whose keys are none of strings, integers and text marshalers), found
// from the type, before the task ever runs.
func checkOutputType(t reflect.Type) *field.Error {
	if t == nil {
		return nil
	}
	u := outputTypeCheck(t)
	if u.bad == nil {
		return nil
	}
	return field.Invalid(field.NewPath("outputType"), u.where,
		"has type %v, which cannot be encoded as JSON, so the output could never leave the task; use plain data (exclude the field with `json:\"-\"` or give the type a MarshalJSON method)", u.bad)
}

// unsupported is what jsonUnsupported finds in an output type.
type unsupported struct {
	where string
	bad   reflect.Type
}

// outputTypes holds jsonUnsupported of each output type checked: a type is
// checked once, however many steps run its tasks.
var outputTypes sync.Map // reflect.Type -> unsupported

func outputTypeCheck(t reflect.Type) unsupported {
	if u, ok := outputTypes.Load(t); ok {
		return u.(unsupported)
	}
	where, bad := jsonUnsupported(t, t.String(), map[reflect.Type]bool{})
	u := unsupported{where, bad}
	outputTypes.Store(t, u)
	return u
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// jsonUnsupported returns the first place in t (a Go selector path rooted
// at where) whose type encoding/json rejects, and that type; bad is nil
// when every part of t can be encoded.
func jsonUnsupported(t reflect.Type, where string, seen map[reflect.Type]bool) (string, reflect.Type) {
	if t.Implements(jsonMarshaler) || t.Implements(textMarshaler) ||
		reflect.PointerTo(t).Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
		return "", nil
	}
	if seen[t] {
		return "", nil
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		return where, t
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return jsonUnsupported(t.Elem(), where+"[]", seen)
	case reflect.Map:
		k := t.Key()
		switch k.Kind() {
		case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		default:
			if !k.Implements(textMarshaler) {
				return where + "[key]", t
			}
		}
		return jsonUnsupported(t.Elem(), where+"[]", seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Tag.Get("json") == "-" || (!f.IsExported() && !f.Anonymous) {
				continue
			}
			if !f.IsExported() && f.Type.Kind() != reflect.Struct &&
				!(f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct) {
				continue // encoding/json ignores embedded unexported non-structs
			}
			if w, bad := jsonUnsupported(f.Type, where+"."+f.Name, seen); bad != nil {
				return w, bad
			}
		}
	}
	return "", nil
}

// noField is the detail of an error about a name that is no exported field
// of t, with the closest field as a suggestion.
func noField(t reflect.Type, name string) string {
	var cands []string
	for _, f := range jsonFields(t) {
		cands = append(cands, f.json)
		if f.goName != f.json {
			cands = append(cands, f.goName)
		}
	}
	return fmt.Sprintf("%v has no exported field of that name%s", t, suggest.DidYouMean(name, cands))
}
