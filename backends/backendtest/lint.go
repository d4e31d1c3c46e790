package backendtest

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/pipeline"
)

// LintKey is what a test of a [backends.Linter] asserts of one problem:
// its field path, type and value.
type LintKey struct {
	Field string
	Type  pipeline.ErrorType
	Value any
}

// CheckLint checks what b, a backends.Linter, reports for p, which must
// be valid: exactly want (nil: nothing), in order, as field errors whose
// details name the backend ("on <name>"); the same field errors from
// pipeline.Compile, wrapping errors.ErrUnsupported; and the program's
// lint command exiting 2 with them on stderr, one per line, or 0.
func CheckLint(t *testing.T, p *pipeline.Pipeline, b backends.Backend, want []LintKey) {
	t.Helper()
	l, ok := b.(backends.Linter)
	if !ok {
		t.Fatalf("%T is no backends.Linter", b)
	}
	plan, err := p.Plan(nil)
	if err != nil {
		t.Fatalf("the pipeline is invalid: %v", err)
	}
	lerr := l.Lint(plan)
	_, cerr := pipeline.Compile(t.Context(), p, b, nil)
	var out, errb bytes.Buffer
	code := pipeline.Exec(t.Context(), p, []string{"lint"}, &out, &errb, b)
	if want == nil {
		if lerr != nil || cerr != nil || code != pipeline.ExitOK {
			t.Errorf("want no problem; Lint: %v; Compile: %v; lint exits %d: %s", lerr, cerr, code, errb.String())
		}
		return
	}
	var got []LintKey
	for _, fe := range pipeline.FieldErrors(lerr) {
		got = append(got, LintKey{fe.Field, fe.Type, fe.BadValue})
		if on := "on " + backends.NameOf(b); !strings.Contains(fe.Detail, on) {
			t.Errorf("%s: the detail does not say %q", fe, on)
		}
	}
	if !equalKeys(got, want) {
		t.Errorf("Lint reports %v, want %v:\n%v", got, want, lerr)
	}
	if !errors.Is(lerr, errors.ErrUnsupported) {
		t.Errorf("Lint's error does not wrap errors.ErrUnsupported: %v", lerr)
	}
	if c := pipeline.FieldErrors(cerr); len(c) != len(got) || cerr == nil || !strings.Contains(cerr.Error(), lerr.Error()) {
		t.Errorf("Compile reports %v, Lint %v", cerr, lerr)
	}
	if code != pipeline.ExitInvalid || errb.String() != lerr.Error()+"\n" || out.Len() > 0 {
		t.Errorf("lint exits %d, printing %q and %q; want %d and Lint's problems, one per line:\n%v", code, out.String(), errb.String(), pipeline.ExitInvalid, lerr)
	}
}

func equalKeys(a, b []LintKey) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
