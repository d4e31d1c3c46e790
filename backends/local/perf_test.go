package local

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/task"
)

// Tests of the internals that keep large runs fast.

func init() { checkFinal = true } // for every test of the package

// Compile defers rendering the record when renders says it cannot fail.
// The TestRenders tests check that promise against the renderer itself.

// sound fails t if rec.renders() holds but rendering fails.
func sound(t *testing.T, what string, rec *Record) (renders bool) {
	t.Helper()
	_, err := yaml.Marshal(rec)
	if rec.renders() && err != nil {
		j, _ := json.Marshal(rec)
		_, err2 := yaml.JSONToYAML(j)
		_, err3 := yaml.Marshal(rec)
		t.Errorf("%s: renders() is true but rendering fails: %v\n%q\n%v %v", what, err, j, err2, err3)
	}
	return rec.renders()
}

func TestRendersInputs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		renders bool
	}{
		{`{"a":1,"b":[true,null,"x"]}`, true},
		{`{"s":"\u003c\u0026\n\t\"\\ \ufffd é 😀 \u0085"}`, true},
		{"{\"s\":\"\u0085\"}", false}, // NEL, a line break to YAML
		{"{\"\u0085\":1}", false},     // which breaks a key
		{`{"a":1,"a":2}`, true},
		{`{"big":1e400,"n":123456789012345678901234567890}`, true},
		{`{"nul":"\u0000\u007f\u0085"}`, true},
		{` { "k" : "v" } `, true},
		{`{"s":"\/"}`, false},           // YAML has no \/ escape
		{`{"s":"\ud83d\ude00"}`, false}, // nor surrogate escapes
		{`{"s":"\uDFFF"}`, false},       // even lone ones
		{"{\"s\":\"\x7f\"}", false},     // DEL
		{"{\"s\":\"\u0080\"}", false},   // C1 control
		{"{\"s\":\"\uffff\"}", false},   // non-character
		{"{\"s\":\"\xff\"}", false},     // invalid UTF-8
		{`{"s":`, false},                // invalid JSON
		{`{"` + strings.Repeat("k", 2000) + `":1}`, false},
		{`{"` + strings.Repeat("k", 150) + `":1}`, true},
		{`{"v":"` + strings.Repeat("v", 5000) + `"}`, true}, // long values are fine
		{strings.Repeat("[", 1001) + strings.Repeat("]", 1001), false},
		{strings.Repeat("[", 900) + strings.Repeat("]", 900), true},
	} {
		rec := &Record{Pipeline: "p", Steps: []RecordStep{{Name: "s", Kind: task.KindGo, Input: json.RawMessage(tc.in)}}}
		if got := sound(t, tc.in, rec); got != tc.renders {
			t.Errorf("%.60q: renders() = %v, want %v", tc.in, got, tc.renders)
		}
	}
}

func TestRendersNaN(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		rec := &Record{Pipeline: "p", Steps: []RecordStep{{Name: "s", Retry: &RecordRetry{BackoffFactor: f}}}}
		if sound(t, "backoff factor", rec) {
			t.Errorf("renders() with backoff factor %v", f)
		}
	}
}

// TestRendersEveryString sets each string of a record, one at a time, to
// text YAML rejects; renders must notice it wherever it is, so a field
// added to the record without a check fails here.
func TestRendersEveryString(t *testing.T) {
	for _, bad := range []string{"\x7f", "\u0080", "\u0085", "\ufffe", strings.Repeat("k", 2000)} {
		var slots []slot
		rec := &Record{}
		fill(reflect.ValueOf(rec).Elem(), "rec", &slots)
		if !sound(t, "filled record", rec) {
			t.Fatal("the filled record does not render")
		}
		n := 0
		for _, sl := range slots {
			sl.set(bad)
			if !rec.renders() {
				n++
			} else if _, err := yaml.Marshal(rec); err != nil {
				t.Errorf("%.10q in %s: renders() but rendering fails: %v", bad, sl.path, err)
			}
			sl.set("x")
		}
		if n == 0 {
			t.Errorf("%.10q: renders() never noticed it", bad)
		}
	}
}

// slot is a string in a record, map keys included.
type slot struct {
	path string
	set  func(string)
}

// fill gives every field of v a value, each pointer, slice and map one
// element, and collects the strings.
func fill(v reflect.Value, path string, slots *[]slot) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
		*slots = append(*slots, slot{path, v.SetString})
	case reflect.Pointer:
		if v.Type() == reflect.TypeFor[*int64]() {
			v.Set(reflect.ValueOf(new(int64)))
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), path, slots)
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[json.RawMessage]() {
			v.SetBytes([]byte(`{"a":1}`))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), path+"[0]", slots)
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		k.SetString("x")
		if v.Type() == reflect.TypeFor[corev1.ResourceList]() {
			e.Set(reflect.ValueOf(resource.MustParse("1")))
		} else {
			fill(e, path+"[]", slots)
		}
		v.SetMapIndex(k, e)
		*slots = append(*slots, slot{path + " key", func(s string) {
			v.SetMapIndex(k, reflect.Value{})
			k.SetString(s)
			v.SetMapIndex(k, e)
		}})
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[resource.Quantity]() {
			return
		}
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				fill(v.Field(i), path+"."+f.Name, slots)
			}
		}
	case reflect.Float64:
		v.SetFloat(2)
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
	case reflect.Bool:
		v.SetBool(true)
	}
}

// TestRendersRandom throws random JSON made of awkward pieces at renders.
func TestRendersRandom(t *testing.T) {
	pieces := []string{`a`, `\/`, `\ud83d\ude00`, `\u00e9`, `\n`, `\\`, `\"`, "\x7f", "\u0085", "\u00a0", "\ufffe", "\u2028",
		"é", "😀", "\xff", `<&>`, strings.Repeat("k", 200), `\u0000`, `: `, `- `, `#`, `*a`, `&a`, `!!str`, `<<`}
	r := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		var b strings.Builder
		b.WriteByte('"')
		for range r.IntN(4) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		b.WriteByte('"')
		return b.String()
	}
	var value func(depth int) string
	value = func(depth int) string {
		switch k := r.IntN(5); {
		case depth > 3 || k == 0:
			return str()
		case k == 1:
			return "[" + value(depth+1) + "," + value(depth+1) + "]"
		case k == 2:
			return "1.5e3"
		default:
			return "{" + str() + ":" + value(depth+1) + "," + str() + ":" + value(depth+1) + "}"
		}
	}
	lazy := 0
	for range 3000 {
		in := value(0)
		rec := &Record{Pipeline: "p", Steps: []RecordStep{{Name: "s", Input: json.RawMessage(in), Args: []string{str()}}}}
		if sound(t, in, rec) {
			lazy++
		}
	}
	if lazy == 0 {
		t.Error("renders() never held")
	}
}

func TestPlaceholderPrefix(t *testing.T) {
	if p := backends.Placeholder(12); !strings.HasPrefix(p, string(placeholderPrefix)) {
		t.Fatalf("placeholder %q does not start with %q", p, placeholderPrefix)
	}
}

// TestPoolLine checks that waiters are admitted in prio order, also
// when some gave up waiting.
func TestPoolLine(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	p := newPool(1, nil, false)
	p.busy = 1 // nobody fits until the end
	var want []prio
	var waiters []*waiter
	for i := range 2000 {
		pr := prio{r.IntN(3), r.IntN(1000), i}
		w := &waiter{granted: make(chan struct{})}
		p.push(pr, w)
		waiters = append(waiters, w)
		if r.IntN(5) == 0 {
			w.gone = true
		} else {
			want = append(want, pr)
		}
		p.grant()
	}
	slices.SortFunc(want, func(a, b prio) int {
		if a.less(&b) {
			return -1
		}
		return 1 // prios are unique
	})
	var got []prio
	for len(p.waiters) > 0 {
		p.busy = 0
		if e := p.waiters[0]; !e.w.gone {
			got = append(got, e.prio)
		}
		p.grant()
	}
	if !slices.Equal(got, want) {
		t.Fatal("waiters admitted out of order")
	}
	for _, w := range waiters {
		select {
		case <-w.granted:
			if w.gone {
				t.Fatal("a waiter that gave up was admitted")
			}
		default:
			if !w.gone {
				t.Fatal("a waiter was not admitted")
			}
		}
	}
}

// TestCloneStatus checks that cloneStatus is a deep copy equal to Clone's,
// nil and empty slices included, whose slices do not share memory with the
// original or with each other.
func TestCloneStatus(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	st := &backends.RunStatus{RunID: "r", Phase: backends.PhaseRunning}
	for i := range 50 {
		s := backends.StepStatus{Name: fmt.Sprint("s", i), Phase: backends.PhaseSucceeded}
		switch r.IntN(3) {
		case 1:
			s.Attempts = []backends.Attempt{}
		case 2:
			for n := range r.IntN(3) + 1 {
				s.Attempts = append(s.Attempts, backends.Attempt{Number: n + 1})
			}
		}
		switch r.IntN(3) {
		case 1:
			s.Output = json.RawMessage{}
		case 2:
			s.Output = json.RawMessage(fmt.Sprint(i))
		}
		if r.IntN(5) == 0 {
			s.Instances = []backends.StepStatus{{Name: "i", Output: json.RawMessage("1")}}
		}
		st.Steps = append(st.Steps, s)
	}
	got := cloneStatus(st)
	if !reflect.DeepEqual(got, st.Clone()) {
		t.Fatal("cloneStatus differs from Clone")
	}
	for i := range got.Steps {
		s := &got.Steps[i]
		s.Attempts = append(s.Attempts, backends.Attempt{Number: 99})
		s.Output = append(s.Output, '!')
		for k := range s.Instances {
			s.Instances[k].Name = "changed"
		}
	}
	if !reflect.DeepEqual(cloneStatus(st), st.Clone()) || got.Steps[0].Name != st.Steps[0].Name {
		t.Fatal("changing the copy changed the original")
	}
	for i, s := range got.Steps {
		if n := len(st.Steps[i].Attempts); s.Attempts[n].Number != 99 {
			t.Fatalf("step %d: appending to one step's attempts wrote over another's", i)
		}
		if s.Output[len(s.Output)-1] != '!' {
			t.Fatalf("step %d: appending to one step's output wrote over another's", i)
		}
	}
}

// TestMirror changes a run's status at random, as the executor may (a
// step's status changes until its phase is final), and checks that a
// mirror brought up to date with sync equals a full copy, and that no
// snapshot changes after it was made.
func TestMirror(t *testing.T) {
	plan := &backends.Plan{Name: "p"}
	for i := range 100 {
		plan.Steps = append(plan.Steps, backends.Step{Name: fmt.Sprint("s", i)})
	}
	plan.Exit = &backends.Step{Name: "exit"}
	r := newRun(t.Context(), New(nil), "p-1", 1, plan)
	defer r.cancelSteps()
	rnd := rand.New(rand.NewPCG(7, 8))
	var m, late mirror
	type kept struct{ snap, was *backends.RunStatus }
	var snaps []kept
	final := func(step int) bool { return r.status.Steps[step].Phase.Done() }
	for round := range 300 {
		for range rnd.IntN(5) {
			at := loc{rnd.IntN(len(r.steps)), -1}
			if final(at.step) {
				r.update(-1, func(st *backends.RunStatus) { st.Message = fmt.Sprint(round) })
				continue
			}
			if n := len(r.status.Steps[at.step].Instances); n > 0 && rnd.IntN(2) == 0 {
				at.inst = rnd.IntN(n)
			}
			switch rnd.IntN(6) {
			case 0:
				if at.inst < 0 {
					r.startFanOut(at, "x", rnd.IntN(3))
				}
			case 1:
				r.end(at, backends.PhaseSucceeded, "", json.RawMessage(fmt.Sprint(round)))
			case 2:
				r.update(at.step, func(st *backends.RunStatus) {
					ss := statusAt(st, at)
					ss.Attempts = append(ss.Attempts, backends.Attempt{Number: round})
				})
			case 3:
				r.update(at.step, func(st *backends.RunStatus) {
					if a := statusAt(st, at).Attempts; len(a) > 0 {
						a[len(a)-1].Phase = backends.PhaseFailed // in place
					}
				})
			case 4:
				r.update(at.step, func(st *backends.RunStatus) { statusAt(st, at).CacheKey = fmt.Sprint(round) })
			case 5:
				r.update(-1, func(st *backends.RunStatus) { st.Message = fmt.Sprint(round) })
			}
		}
		r.sync(&m)
		if !reflect.DeepEqual(&m.st, r.current()) {
			t.Fatalf("round %d: the mirror differs from the status", round)
		}
		snap := m.snapshot()
		snaps = append(snaps, kept{snap, snap.Clone()})
		if round%50 == 0 {
			r.sync(&late) // a watcher that seldom looks
			if !reflect.DeepEqual(&late.st, r.current()) {
				t.Fatalf("round %d: the late mirror differs from the status", round)
			}
		}
	}
	done := 0
	for i := range plan.Steps {
		if final(i) {
			done++
		}
	}
	if done < len(plan.Steps)/2 || done == len(plan.Steps) {
		t.Fatalf("%d of %d steps ended: the test no longer mixes running and ended steps", done, len(plan.Steps))
	}
	for i, k := range snaps {
		if !reflect.DeepEqual(k.snap, k.was) {
			t.Fatalf("snapshot %d changed after it was made", i)
		}
	}
}

// TestUpdateChecksFinal checks that, in tests, changing a step whose phase
// is final panics: watchers share what such a step refers to.
func TestUpdateChecksFinal(t *testing.T) {
	plan := &backends.Plan{Name: "p", Steps: []backends.Step{{Name: "a"}}}
	r := newRun(t.Context(), New(nil), "p-1", 1, plan)
	defer r.cancelSteps()
	r.end(loc{0, -1}, backends.PhaseSucceeded, "", json.RawMessage("1"))
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	r.update(0, func(st *backends.RunStatus) { st.Steps[0].Message = "later" })
}

// TestNextReport checks the pace of snapshots: none is held back in a
// small run or when nothing changed while the last one was reported;
// otherwise the next waits for paceFactor times the changes made
// meanwhile.
func TestNextReport(t *testing.T) {
	for _, c := range []struct {
		n         int
		v, now    uint64
		want      uint64
		situation string
	}{
		{paceSteps - 1, 10, 50, 0, "a small run"},
		{paceSteps, 10, 10, 0, "nothing changed meanwhile"},
		{paceSteps, 10, 11, 11 + paceFactor, "one change meanwhile"},
		{100_000, 1_000, 3_000, 3_000 + paceFactor*2_000, "a fast run"},
	} {
		if got := nextReport(c.n, c.v, c.now); got != c.want {
			t.Errorf("%s: nextReport(%d, %d, %d) = %d, want %d", c.situation, c.n, c.v, c.now, got, c.want)
		}
	}
}

type constInvoker []byte

func (c constInvoker) Invoke(context.Context, []byte) ([]byte, error) { return c, nil }

// TestAttemptSpansCostNothingUntraced checks, by counting allocations,
// that without a TracerProvider (the global one, a no-op until the
// application installs one) an attempt makes no span: the attempt
// allocates less than it does when made to start its span anyway, and
// attemptSpan allocates nothing. With a provider, attempts have spans.
func TestAttemptSpansCostNothingUntraced(t *testing.T) {
	plan := &backends.Plan{Name: "p", Steps: []backends.Step{{Name: "a", Invoke: constInvoker(`{"ok":true}`)}}}
	r := newRun(t.Context(), New(nil), "p-1", 1, plan)
	defer r.cancelSteps()
	if r.traced {
		t.Fatal("a run records its span without a provider")
	}
	if allocs := testing.AllocsPerRun(100, func() {
		if _, span := r.attemptSpan(r.stepCtx, "a", 2, 1); span != nil {
			t.Fatal("an attempt span without a provider")
		}
	}); allocs != 0 {
		t.Errorf("attemptSpan allocates %v times without a provider", allocs)
	}
	attempt := func() {
		r.mu.Lock()
		r.status.Steps[0].Attempts = nil
		r.mu.Unlock()
		if _, phase, _, err := r.attempt(r.stepCtx, loc{0, -1}, r.steps[0], json.RawMessage(`{}`), 1, false); phase != backends.PhaseSucceeded {
			t.Fatal(phase, err)
		}
	}
	untraced := testing.AllocsPerRun(100, attempt)
	r.traced = true // as every attempt was before: a span from the no-op tracer
	spanned := testing.AllocsPerRun(100, attempt)
	t.Logf("allocations of an attempt: %v untraced, %v with a no-op span", untraced, spanned)
	if untraced >= spanned {
		t.Errorf("an attempt untraced allocates %v times, no fewer than with a span (%v)", untraced, spanned)
	}

	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	rt := newRun(t.Context(), New(&Options{TracerProvider: tp}), "p-2", 2, plan)
	defer rt.cancelSteps()
	if _, span := rt.attemptSpan(rt.stepCtx, "a", -1, 1); span == nil || !span.IsRecording() {
		t.Error("no attempt span with a provider")
	}
}

// TestLargePlanInChunks checks what Compile, Submit and Watch do for each
// step of a large plan in chunks, on several goroutines (see forChunks),
// against doing it on one: the run's statuses and dependencies, whether
// the record renders, the capacity errors (in plan order) and the copy of
// a status.
func TestLargePlanInChunks(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	n := 3*minChunk + 5
	if numChunks(n) < 3 {
		t.Fatalf("%d steps in %d chunks", n, numChunks(n))
	}
	r := rand.New(rand.NewPCG(9, 10))
	plan := &backends.Plan{Name: "large", Steps: make([]backends.Step, n)}
	want := make([][]int, n)
	for i := range plan.Steps {
		s := &plan.Steps[i]
		s.Name = fmt.Sprintf("s%06d", i)
		s.Input.Template = json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))
		for range min(i, r.IntN(4)) {
			d := r.IntN(i)
			s.DependsOn = append(s.DependsOn, plan.Steps[d].Name)
			want[i] = append(want[i], d)
		}
	}
	b := New(&Options{Capacity: &Capacity{CPU: "1"}})
	run := newRun(t.Context(), b, "large-1", 1, plan)
	defer run.cancelSteps()
	for i := range n {
		if !slices.Equal(run.deps[i], want[i]) || len(run.deps[i]) != cap(run.deps[i]) {
			t.Fatalf("step %d depends on %v (cap %d), want %v", i, run.deps[i], cap(run.deps[i]), want[i])
		}
		if !reflect.DeepEqual(run.status.Steps[i], pendingStatus(&plan.Steps[i])) {
			t.Fatalf("step %d: status %+v", i, run.status.Steps[i])
		}
	}

	if !planRenders(plan) || !newRecord(plan).renders() {
		t.Fatal("the large plan does not render")
	}
	bad := &plan.Steps[2*minChunk+1]
	bad.Input.Template = json.RawMessage("{\"s\":\"\u0085\"}")
	if planRenders(plan) || newRecord(plan).renders() {
		t.Fatal("a step YAML cannot read renders")
	}

	for _, i := range []int{2*minChunk + 9, 5, minChunk + 7} {
		plan.Steps[i].Resolved.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
	}
	err := b.check(plan)
	if err == nil {
		t.Fatal("no error for steps larger than the capacity")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "s000005") || !strings.Contains(lines[1], fmt.Sprintf("s%06d", minChunk+7)) || !strings.Contains(lines[2], fmt.Sprintf("s%06d", 2*minChunk+9)) {
		t.Fatalf("errors not in plan order:\n%v", err)
	}

	st := &backends.RunStatus{RunID: "r", Steps: slices.Clone(run.status.Steps)}
	for i := range st.Steps {
		s := &st.Steps[i]
		switch r.IntN(4) {
		case 1:
			s.Attempts, s.Output = []backends.Attempt{}, json.RawMessage{}
		case 2:
			s.Attempts, s.Output = []backends.Attempt{{Number: 1}, {Number: 2, Message: s.Name}}, json.RawMessage(fmt.Sprint(i))
		case 3:
			s.Instances = []backends.StepStatus{{Name: "i", Attempts: []backends.Attempt{{Number: 1}}}}
		}
	}
	got := cloneStatus(st)
	if !reflect.DeepEqual(got, st.Clone()) {
		t.Fatal("cloneStatus in chunks differs from Clone")
	}
	for i := range got.Steps {
		s := &got.Steps[i]
		if len(s.Attempts) > 0 {
			s.Attempts[0].Number = -1
		}
		if len(s.Output) > 0 {
			s.Output[0] = '!'
		}
	}
	if !reflect.DeepEqual(cloneStatus(st), st.Clone()) || st.Steps[2].Name != got.Steps[2].Name {
		t.Fatal("changing the copy changed the original")
	}
}
