package pipeline

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"github.com/sluice-ml/sluice/artifact"
	"hash/maphash"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/internal/naming"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// MaxNameLength is the longest task or pipeline name accepted: names become
// DNS-1123 labels, which Kubernetes limits to 63 characters.
const MaxNameLength = naming.MaxLabel

var compareOps = []string{"==", "!=", "<", "<=", ">", ">="}

var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// builder is one validation and lowering pass.
//
// It keeps what it learns of each step in slices by node index (a node's
// index is its place in Pipeline.nodes), builds field paths only to report
// a problem (field.Lazy), and carves the plan's small slices out of
// shared chunks (arena), so that lowering a valid step allocates little.
type builder struct {
	p     *Pipeline
	root  *field.Path
	tasks *field.Path // root.tasks, the parent of every step's path
	errs  field.List
	// names are the steps' DNS-1123 names, by node index.
	names []string
	// nameErrs holds each step's name problems, by node index, reported
	// with the step's other problems so that errors come grouped by step.
	// Most steps have none: it is a map of the steps that have some.
	nameErrs map[int][]*field.Error
	// defaultResErrs are the problems of the default profile, reported
	// once under pipeline.defaults rather than again for every task.
	defaultResErrs []*field.Error
	// res resolves each distinct resource profile once.
	res *resources.Resolver
	// profiles are the plain profiles of the steps lowered, merged and
	// resolved (resolveProfile).
	profiles []profileMemo

	// The steps each step waits for: node i's are the node indices
	// depList[depStart[i]:depStart[i+1]], each once. Steps are lowered
	// in index order, each appending its own.
	depStart []int32
	depList  []int32
	// depMark[m] is i+1 once node m is among node i's dependencies.
	depMark []int32

	// walk is the state of the walk of one step's input for Refs.
	walk walker
	// trail is the path from the Lazy a walk for Refs started at to the
	// value it is at (pathOf): kept as a stack, so that the walk makes no
	// Lazy for each value it goes through. It is empty between walks.
	trail []field.Segment
	// raw is each step's input as JSON (appendJSON), or, for a type
	// only encoding/json encodes, jsonBuf (by enc); out is its template.
	raw     []byte
	jsonBuf bytes.Buffer
	enc     *json.Encoder
	out     []byte
	// floats holds the text of the floats the inputs had last.
	floats floatCache
	// The plans of inType, the type of the last input (inputPlans).
	inType    reflect.Type
	inRefPlan *refPlan
	inEncPlan *encPlan

	// Chunks the plan's small slices are carved from.
	strs    arena[string]
	refs    arena[backends.Ref]
	bytes   arena[byte]
	retries arena[task.Retry]
}

// build validates p and, when it is valid, lowers it to a Plan.
func (p *Pipeline) build(overrides map[string]string) (*backends.Plan, error) {
	if p == nil {
		return nil, misuse("Validate of a nil *Pipeline; create one with pipeline.New")
	}
	n := len(p.nodes)
	b := &builder{
		res:      resources.NewResolver(p.pools),
		p:        p,
		root:     field.NewPath("pipeline"),
		names:    make([]string, n),
		nameErrs: make(map[int][]*field.Error),
		depStart: make([]int32, n+1),
		depList:  make([]int32, 0, 2*n),
		depMark:  make([]int32, n),
	}
	b.tasks = b.root.Child("tasks")
	b.enc = json.NewEncoder(&b.jsonBuf)
	b.bytes.chunk = 16 << 10
	plan := &backends.Plan{DisplayName: p.name, NodePools: slices.Clone(p.pools), Artifacts: p.store}
	if p.store != "" {
		if err := artifact.CheckRoot(p.store); err != nil {
			b.errs.Add(field.Invalid(b.root.Child("artifacts"), p.store, err.Error()))
		}
	}
	name, errs := checkName(b.root.Child("name"), p.name)
	plan.Name = name
	b.errs.Add(errs...)
	b.checkDefaults()
	b.errs.AddUnder(b.root.Child("nodePools"), resources.ValidatePools(p.pools))
	plan.Params = b.params(overrides)
	b.nodeNames()

	steps := make([]backends.Step, n)
	for i, nd := range p.nodes {
		b.depStart[i] = int32(len(b.depList))
		b.step(nd, &steps[i])
		b.depStart[i+1] = int32(len(b.depList))
	}
	for i, nd := range p.exits {
		if i > 0 {
			b.errs.Add(field.Duplicate(b.root.Child("onExit"), nd.name, "a pipeline has one exit handler; %q is already set", p.exits[0].name))
		}
	}
	order := b.topoOrder()
	if b.errs.Len() > 0 {
		return nil, b.errs.Err()
	}
	if b.inIndexOrder(order) {
		plan.Steps = steps // no exit handler, and the steps were added in order
	} else {
		plan.Steps = make([]backends.Step, 0, len(order))
		for _, nd := range order {
			plan.Steps = append(plan.Steps, steps[nd.index])
		}
	}
	if len(p.exits) == 1 {
		exit := steps[p.exits[0].index]
		plan.Exit = &exit
	}
	return plan, nil
}

// inIndexOrder reports whether order is every node in index order.
func (b *builder) inIndexOrder(order []*node) bool {
	return slices.Equal(order, b.p.nodes)
}

// checkName checks a user-given name and returns its DNS-1123 form.
func checkName(path *field.Path, name string) (string, []*field.Error) {
	at := path.Lazy()
	return checkNameOf(&at, name)
}

// checkNameAt is checkName of the name of the step at at, with the path
// of its name built only for a problem.
func checkNameAt(at *field.Lazy, name string) (string, []*field.Error) {
	if name != "" && len(name) <= MaxNameLength {
		if s := sanitize(name); s != "" {
			return naming.Fit(s, naming.MaxLabel), nil
		}
	}
	nameAt := at.Child("name")
	return checkNameOf(&nameAt, name)
}

// checkNameOf is checkName of the name at at.
func checkNameOf(at *field.Lazy, name string) (string, []*field.Error) {
	if name == "" {
		return "", []*field.Error{field.Required(at.Path(), "give it a name: letters, digits and '-', at most %d characters", MaxNameLength)}
	}
	var errs []*field.Error
	if len(name) > MaxNameLength {
		errs = append(errs, field.TooLong(at.Path(), name, MaxNameLength))
	}
	s := sanitize(name)
	if s == "" {
		errs = append(errs, field.Invalid(at.Path(), name, "has no ASCII letter or digit to build a DNS-1123 name from; use a name such as %q", "train-model"))
	}
	return naming.Fit(s, naming.MaxLabel), errs
}

func (b *builder) checkDefaults() {
	d := b.p.defaults
	path := b.root.Child("defaults")
	b.defaultResErrs = field.Errors(d.Resources.Validate())
	b.errs.AddUnder(path.Child("resources"), d.Resources.Validate())
	b.errs.AddUnder(path.Child("retry"), d.Retry.Validate())
	b.errs.AddUnder(path.Child("timeout"), task.ValidateTimeout(d.Timeout))
}

func (b *builder) params(overrides map[string]string) []backends.Param {
	path := b.root.Child("params")
	seen := make(map[string]bool, len(b.p.params))
	var out []backends.Param
	for _, pm := range b.p.params {
		pp := path.Key(pm.name)
		switch {
		case pm.name == "":
			b.errs.Add(field.Required(path.Index(pm.index).Child("name"), "every parameter needs a name"))
		case !paramName.MatchString(pm.name):
			b.errs.Add(field.Invalid(pp, pm.name, "a parameter name is letters, digits and '_', not starting with a digit"))
		case len(pm.name) > MaxNameLength:
			b.errs.Add(field.TooLong(pp, pm.name, MaxNameLength))
		case seen[pm.name]:
			b.errs.Add(field.Duplicate(pp, pm.name, "parameter names must be unique"))
		}
		seen[pm.name] = true
		def, err := json.Marshal(pm.def)
		if err != nil {
			b.errs.Add(field.Invalid(pp.Child("default"), fmt.Sprint(pm.def), "cannot be encoded as JSON: %v", err))
			continue
		}
		val := def
		if s, ok := overrides[pm.name]; ok {
			if v, errs := checkParam(pp, pm.name, pm.typ, s); len(errs) > 0 {
				b.errs.Add(errs...)
			} else {
				val = v
			}
		}
		out = append(out, backends.Param{Name: pm.name, Type: pm.typ.String(), Default: def, Value: val, Text: textParam(pm.typ, def, val)})
	}
	for _, name := range slices.Sorted(maps.Keys(overrides)) {
		if !seen[name] {
			known := make([]string, 0, len(b.p.params))
			for _, pm := range b.p.params {
				known = append(known, pm.name)
			}
			b.errs.Add(field.NotFound(path.Key(name), name, "%s", unknownParam(name, known)))
		}
	}
	return out
}

// parseParam parses an override: a string type takes the text as is,
// anything else parses it as JSON.
func parseParam(t reflect.Type, s string) (json.RawMessage, error) {
	v := reflect.New(t)
	if t.Kind() == reflect.String {
		v.Elem().SetString(s)
	} else if err := json.Unmarshal([]byte(s), v.Interface()); err != nil {
		return nil, err
	}
	return json.Marshal(v.Elem().Interface())
}

// sanitize is naming.Sanitize, without a copy of a name it leaves as is
// and with one allocation for any other ASCII name.
func sanitize(name string) string {
	if isSanitized(name) {
		return name
	}
	return sanitizeASCII(name)
}

// isSanitized reports whether naming.Sanitize leaves name as it is.
func isSanitized(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(name)-1 && name[i-1] != '-':
		default:
			return false
		}
	}
	return true
}

// sanitizeASCII is naming.Sanitize of an ASCII name, written byte by byte
// (for ASCII, bytes are runes); any other name is naming.Sanitize's.
func sanitizeASCII(name string) string {
	out, ok := appendSanitized(make([]byte, 0, len(name)), name)
	if !ok {
		return naming.Sanitize(name)
	}
	return string(out)
}

// appendSanitized appends naming.Sanitize(name) to dst, for an ASCII
// name; it returns false for any other.
func appendSanitized(dst []byte, name string) ([]byte, bool) {
	start := len(dst)
	dash := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= utf8.RuneSelf:
			return dst[:start], false
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		default:
			dash = len(dst) > start
			continue
		}
		if dash {
			dst = append(dst, '-')
			dash = false
		}
		dst = append(dst, c)
	}
	return dst, true
}

// nodeAt returns the path of n: pipeline.tasks[name], or
// pipeline.tasks[index] for a step without a name.
func (b *builder) nodeAt(n *node) field.Lazy {
	if n.name == "" {
		return b.tasks.LazyIndex(n.index)
	}
	return b.tasks.LazyKey(n.name)
}

// nodeNames checks every step's name and assigns DNS-1123 names.
func (b *builder) nodeNames() {
	b.sanitizeNames()
	// bySan holds the first step of each DNS-1123 name. Steps of one
	// name (as given) have one DNS-1123 name, so only where two steps'
	// DNS-1123 names meet can two names be equal: byRaw, the first step
	// of each name, is built then, from the steps before.
	bySan := newNameTable(len(b.p.nodes))
	var byRaw map[string]*node
	for i, n := range b.p.nodes {
		raw, name := n.name, b.names[n.index]
		if raw == "" || name == "" {
			continue
		}
		slot, first, taken := bySan.find(name, b.names)
		var m *node // the first step of name
		if taken {
			m = b.p.nodes[first]
		}
		if taken && byRaw == nil {
			byRaw = make(map[string]*node)
			for _, e := range b.p.nodes[:i] {
				if _, ok := byRaw[e.name]; !ok && e.name != "" && b.names[e.index] != "" {
					byRaw[e.name] = e
				}
			}
		}
		if byRaw != nil {
			if m, ok := byRaw[raw]; ok {
				at := b.nodeAt(n)
				nameAt := at.Child("name")
				b.nameErrs[n.index] = append(b.nameErrs[n.index], field.Duplicate(nameAt.Path(), raw, "task %d has the same name; give one a new name with WithName", m.index))
				continue
			}
			byRaw[raw] = n
		}
		if taken {
			at := b.nodeAt(n)
			nameAt := at.Child("name")
			b.nameErrs[n.index] = append(b.nameErrs[n.index], field.Duplicate(nameAt.Path(), raw, "becomes %q, as %q does; rename one", name, m.name))
			continue
		}
		bySan.slots[slot] = int32(n.index) + 1
	}
}

// nameTable is a set of step names, each with the node index of its
// first step, for nodeNames: a hash table with open addressing of node
// indices (names[i] is node i's name), which takes a third of the
// memory of a map[string]*node of thousands of names, and that the GC
// need not scan.
type nameTable struct {
	seed maphash.Seed
	// slots hold node indices plus one, 0 in an empty slot; at most
	// half of them are full.
	slots []int32
}

// newNameTable returns an empty nameTable for up to n names.
func newNameTable(n int) nameTable {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	return nameTable{seed: maphash.MakeSeed(), slots: make([]int32, size)}
}

// find returns the slot of name: the slot that holds it, and the node
// index there; or else the empty slot that it takes when set (to the
// node index plus one) before the next name is set.
func (t *nameTable) find(name string, names []string) (slot, index int, ok bool) {
	mask := len(t.slots) - 1
	for i := int(maphash.String(t.seed, name)) & mask; ; i = (i + 1) & mask {
		v := t.slots[i]
		if v == 0 {
			return i, 0, false
		}
		if names[v-1] == name {
			return i, int(v - 1), true
		}
	}
}

// sanitizeNames sets each step's DNS-1123 name and its name's problems.
// The names that sanitizing changes are written into one buffer and cut
// from it: a pipeline's steps are often named like "Train 0042".
func (b *builder) sanitizeNames() {
	size := 0
	for _, n := range b.p.nodes {
		size += len(n.name) // sanitizing never makes a name longer
	}
	// all is grown once, so the names cut from it (String, then a
	// slice of it: no copy) share one allocation; it only appends, so
	// the bytes of a name cut from it never change.
	var all strings.Builder
	all.Grow(size)
	var scratch []byte
	for _, n := range b.p.nodes {
		raw := n.name
		if n.fanIndex < 0 && raw != "" && len(raw) <= MaxNameLength && !isSanitized(raw) {
			// checkNameAt's valid case, cut from all.
			var ok bool
			if scratch, ok = appendSanitized(scratch[:0], raw); ok && len(scratch) > 0 {
				start := all.Len()
				all.Write(scratch)
				b.names[n.index] = all.String()[start:]
				continue
			}
		}
		at := b.nodeAt(n)
		var name string
		var errs []*field.Error
		if n.fanIndex >= 0 {
			// A generated name: check the base name; fit the rest.
			base := raw[:strings.LastIndexByte(raw, '-')]
			_, errs = checkNameAt(&at, base)
			name = naming.Fit(sanitize(raw), naming.MaxLabel)
		} else {
			name, errs = checkNameAt(&at, raw)
		}
		b.names[n.index] = name
		if len(errs) > 0 {
			b.nameErrs[n.index] = errs
		}
	}
}

// step validates n and lowers it into st (the result is used only if the
// whole pipeline is valid).
func (b *builder) step(n *node, st *backends.Step) {
	at := b.nodeAt(n)
	d := b.p.defaults
	nameErrs := b.nameErrs[n.index]
	b.errs.Add(nameErrs...)
	specErrs := n.spec.Validate()
	if len(nameErrs) > 0 {
		// Name problems are reported once, from the name checks above.
		specErrs = withoutField(specErrs, "name")
	}
	if specErrs != nil {
		b.errs.AddUnder(at.Path(), specErrs)
	}
	// A deep copy of the task's spec, but for the fields set below.
	spec := n.spec
	spec.Retry, spec.Resources = nil, resources.Profile{}
	spec = spec.Clone()
	retry := b.retries.take(1)
	if r := n.spec.Retry; r != nil {
		retry[0] = *r
	} else {
		retry[0] = d.Retry
	}
	spec.Retry = &retry[0]
	if spec.Timeout == 0 {
		spec.Timeout = d.Timeout
	}
	// Steps of one profile share its resolution: a Plan is read only.
	merged, resolved, err := b.resolveProfile(&n.spec.Resources)
	spec.Resources = merged
	if err != nil {
		if err := withoutErrors(err, b.defaultResErrs); err != nil {
			res := at.Child("resources")
			b.errs.AddUnder(res.Path(), err)
		}
	}

	// st is zero: set its fields one by one, each copied once.
	st.Name = b.names[n.index]
	st.DisplayName = n.name
	st.Task = spec
	st.Resolved = resolved
	st.Invoke = n.invoke
	st.Cache = spec.Cache
	st.Input = b.input(n, &at)
	if len(n.when) > 0 {
		when := at.Child("when")
		st.When = b.when(n, &when)
	}
	if n.forEach != nil {
		fe := at.Child("forEach")
		st.ForEach = b.forEach(n, &fe)
	}
	if len(n.after) > 0 || n.badAfter > 0 {
		after := at.Child("after")
		b.after(n, &after)
	}
	b.runChecks(n, &at)
	st.DependsOn = b.dependsOn(n)
}

// addDep records that n, the step being lowered, waits for the step of
// node index m.
func (b *builder) addDep(n *node, m int) {
	if b.depMark[m] == int32(n.index)+1 {
		return
	}
	b.depMark[m] = int32(n.index) + 1
	b.depList = append(b.depList, int32(m))
}

// ownStep returns the node index of the step s, a srcStep, refers to when
// that step is one of b.p's, without loading the step's node (see
// stepSource): a node is in its own pipeline's list only.
func (b *builder) ownStep(s *source) (int, bool) {
	i := s.nodeIndex
	if s.node == nil || i < 0 || i >= len(b.p.nodes) || b.p.nodes[i] != s.node {
		return 0, false
	}
	return i, true
}

// isExit reports whether n is one of b.p's exit handlers, without loading
// n (a pipeline has at most one).
func (b *builder) isExit(n *node) bool {
	return slices.Contains(b.p.exits, n)
}

// depsOf returns the node indices of the steps n waits for, once every
// step is lowered.
func (b *builder) depsOf(n *node) []int32 {
	return b.depList[b.depStart[n.index]:b.depStart[n.index+1]]
}

// dependsOn returns the sorted names of the steps n waits for, nil for none.
func (b *builder) dependsOn(n *node) []string {
	deps := b.depList[b.depStart[n.index]:]
	if len(deps) == 0 {
		return nil
	}
	names := b.strs.take(len(deps))
	for i, m := range deps {
		names[i] = b.names[m]
	}
	if len(names) <= 8 {
		// An insertion sort: a step waits for a few others.
		for i := 1; i < len(names); i++ {
			for j := i; j > 0 && names[j] < names[j-1]; j-- {
				names[j], names[j-1] = names[j-1], names[j]
			}
		}
	} else {
		slices.Sort(names)
	}
	return names
}

// useRef checks one use of a reference by n, at at and below it the trail
// (see pathOf), and records the dependency. It returns false when the
// reference is unusable.
func (b *builder) useRef(n *node, at *field.Lazy, s *source) bool {
	if s.err != "" {
		b.errs.Add(field.Invalid(b.pathOf(at), s.describe(), "%s", s.err))
		return false
	}
	switch s.kind {
	case srcStep:
		if m, ok := b.ownStep(s); ok && !n.exit && m != n.index && !b.isExit(s.node) {
			b.addDep(n, m) // the common case, without loading s.node
			return true
		}
		switch {
		case s.zeroStep || s.node == nil:
			b.errs.Add(field.NotFound(b.pathOf(at), "", "refers to a step that was never added; use the Step that Add returned"))
			return false
		case s.node.p != b.p:
			b.errs.Add(field.Invalid(b.pathOf(at), s.node.name, "refers to a step of pipeline %q; a pipeline can only read its own steps", s.node.p.name))
			return false
		case s.node.exit:
			b.errs.Add(field.Invalid(b.pathOf(at), s.node.name, "the exit handler runs last, so no step can read its output"))
			return false
		case n.exit:
			b.errs.Add(field.Invalid(b.pathOf(at), s.node.name, "the exit handler runs even when steps fail, so it can read only parameters, the run's facts (RunID, RunStarted, RunScheduled) and Pipeline.Status"))
			return false
		case s.node == n:
			b.errs.Add(field.Invalid(b.pathOf(at), s.node.name, "a step cannot read its own output"))
			return false
		}
		b.addDep(n, s.node.index)
	case srcParam:
		if s.param.pipe != b.p {
			b.errs.Add(field.Invalid(b.pathOf(at), s.param.name, "refers to a parameter of pipeline %q; declare it on this pipeline", s.param.pipe.name))
			return false
		}
	case srcItem:
		if s.node != n {
			name := ""
			if s.node != nil {
				name = s.node.name
			}
			b.errs.Add(field.Invalid(b.pathOf(at), name, "the element of fan-out %q can only be used in that fan-out's input", name))
			return false
		}
	case srcRun:
		if s.pipe != b.p {
			b.errs.Add(field.Invalid(b.pathOf(at), "run", "refers to the status of pipeline %q", s.pipe.name))
			return false
		}
		if !n.exit {
			b.errs.Add(field.Invalid(b.pathOf(at), "run", "Pipeline.Status can only be read by the exit handler (see OnExit)"))
			return false
		}
	case srcCollect:
		ok := true
		for i, e := range s.elems {
			ok = b.useElem(n, at, i, e) && ok
		}
		return ok
	}
	return true
}

// useElem is useRef of element i of a collected list at at.
func (b *builder) useElem(n *node, at *field.Lazy, i int, s *source) bool {
	b.trail = append(b.trail, field.IndexSeg(i))
	ok := b.useRef(n, at, s)
	b.trail = b.trail[:len(b.trail)-1]
	return ok
}

// pathOf returns the path of the value a check is at: at, then the trail
// of the walk (or the collected list) that led there from at.
func (b *builder) pathOf(at *field.Lazy) *field.Path { return field.Extend(at.Path(), b.trail) }

func (b *builder) planRef(s *source) backends.Ref {
	var r backends.Ref
	b.planRefInto(&r, s)
	return r
}

// planRefInto sets *r, a zero Ref, to the plan's Ref of s.
func (b *builder) planRefInto(r *backends.Ref, s *source) {
	if len(s.path) > 0 {
		r.Path = b.strs.take(len(s.path))
		copy(r.Path, s.path)
	} else {
		r.Path = slices.Clone(s.path)
	}
	switch s.kind {
	case srcStep:
		i, ok := b.ownStep(s)
		if !ok {
			i = s.node.index // not lowered: the pipeline is invalid
		}
		r.Kind, r.Step = backends.RefStep, b.names[i]
	case srcParam:
		r.Kind, r.Param = backends.RefParam, s.param.name
	case srcItem:
		r.Kind = backends.RefItem
	case srcRun:
		r.Kind = backends.RefRun
	case srcConst:
		r.Kind = backends.RefConst
		r.Value, _ = json.Marshal(s.constVal)
	case srcMeta:
		r.Kind, r.Meta = backends.RefMeta, s.meta
	case srcCollect:
		r.Kind = backends.RefCollect
		if len(s.elems) > 0 {
			r.Elems = b.refs.take(len(s.elems))
			for i, e := range s.elems {
				b.planRefInto(&r.Elems[i], e)
			}
		}
	}
}

var (
	// placeholderPrefix starts every backends.Placeholder.
	placeholderPrefix = []byte(strings.TrimSuffix(backends.Placeholder(0), "0}"))
	// refToken starts the JSON of every Ref with a source (Ref.MarshalJSON).
	refToken = []byte(`{"$sluice.ref":`)
)

// input checks every Ref in n's input and builds the JSON template. The
// input is at step.input: the walk's trail starts with "input", so that
// no Lazy is made for it (extending a Lazy copies it, ~5% of lowering's
// CPU profile when it was made for every step).
func (b *builder) input(n *node, step *field.Lazy) backends.Input {
	b.trail = append(b.trail[:0], field.ChildSeg("input"))
	in := b.inputAt(n, step)
	b.trail = b.trail[:0]
	return in
}

// inputAt is input, with b.trail holding the input's place below at.
func (b *builder) inputAt(n *node, at *field.Lazy) backends.Input {
	w := &b.walk
	w.reset(n)
	v := reflect.ValueOf(n.input)
	refPlan, encPlan := b.inputPlans(v)
	if refPlan != nil {
		b.walkRefs(v, refPlan, at, 0)
	}
	// Write the template at once, each Ref as its placeholder. What this
	// cannot write is encoded as JSON and its Refs' tokens are replaced
	// below, where the problems of such an input are found.
	tmpl, ok := appendJSONOf(b.raw[:0], v, encPlan, b)
	if ok {
		b.raw = tmpl
		if !w.ok {
			return backends.Input{}
		}
		var in backends.Input
		if len(w.refs) > 0 {
			in.Refs = w.refs[:len(w.refs):len(w.refs)]
		}
		in.Template = b.bytes.take(len(tmpl))
		copy(in.Template, tmpl)
		return in
	}
	w.unplace()
	raw, ok := appendJSONOf(b.raw[:0], v, encPlan, nil)
	if ok {
		b.raw = raw
	} else {
		// A type only encoding/json encodes, or a value it rejects.
		b.jsonBuf.Reset()
		if err := b.enc.Encode(n.input); err != nil {
			b.errs.Add(field.Invalid(b.pathOf(at), fmt.Sprintf("%T", n.input), "cannot be encoded as JSON: %v", err))
			return backends.Input{}
		}
		raw = b.jsonBuf.Bytes()
		raw = raw[:len(raw)-1] // Encode ends the value with a newline
	}
	if !w.ok {
		return backends.Input{}
	}
	if bytes.Contains(raw, placeholderPrefix) {
		b.errs.Add(field.Invalid(b.pathOf(at), fmt.Sprintf("%T", n.input), "holds the object key %q, which Sluice reserves for references; rename the key", "$sluice"))
		return backends.Input{}
	}
	var in backends.Input
	refs := w.refs
	out := b.out[:0]
	for {
		k := bytes.Index(raw, refToken)
		if k < 0 {
			out = append(out, raw...)
			break
		}
		out = append(out, raw[:k]...)
		raw = raw[k+len(refToken):]
		end := bytes.IndexByte(raw, '}')
		id, _ := strconv.ParseInt(string(raw[:end]), 10, 64)
		raw = raw[end+1:]
		f := w.find(id)
		if f != nil && f.uses == 0 {
			b.errs.Add(field.Invalid(b.pathOf(at), fmt.Sprintf("%T", n.input), "holds the object key %q, which Sluice reserves for references; rename the key", "$sluice.ref"))
			return backends.Input{}
		}
		if f == nil {
			b.errs.Add(field.Invalid(b.pathOf(at), fmt.Sprintf("%T", n.input), "holds a Ref that Sluice cannot see (in an unexported field or behind a custom MarshalJSON); make the field exported"))
			return backends.Input{}
		}
		f.uses--
		if f.index < 0 {
			if refs == nil {
				refs = b.refs.take(len(w.found))[:0]
			}
			f.index = len(refs)
			refs = append(refs, b.planRef(f.src))
		}
		out = append(out, placeholderPrefix...)
		out = strconv.AppendInt(out, int64(f.index), 10)
		out = append(out, '}')
	}
	b.out = out
	if len(refs) > 0 {
		in.Refs = refs[:len(refs):len(refs)]
	}
	in.Template = b.bytes.take(len(out))
	copy(in.Template, out)
	return in
}

// inputPlans returns the plans of v's type: the walk's (nil if it cannot
// hold a Ref) and the encoder's (nil for the invalid v). Steps in a row
// mostly have inputs of one type, whose plans it keeps at hand.
func (b *builder) inputPlans(v reflect.Value) (*refPlan, *encPlan) {
	if !v.IsValid() {
		return nil, nil
	}
	if t := v.Type(); t != b.inType {
		b.inType, b.inRefPlan, b.inEncPlan = t, refPlanOf(t), encPlanOf(t)
	}
	return b.inRefPlan, b.inEncPlan
}

func (b *builder) when(n *node, at *field.Lazy) *backends.Condition {
	var cs []backends.Condition
	for i, c := range n.when {
		p := at
		var ip field.Lazy
		if len(n.when) > 1 {
			ip = at.Index(i)
			p = &ip
		}
		if pc, ok := b.cond(n, p, c); ok && pc != nil {
			cs = append(cs, *pc)
		}
	}
	switch len(cs) {
	case 0:
		return nil
	case 1:
		return &cs[0]
	}
	return &backends.Condition{Op: "and", Args: cs}
}

func (b *builder) cond(n *node, at *field.Lazy, c Cond) (*backends.Condition, bool) {
	if c.c == nil {
		return nil, true
	}
	out := &backends.Condition{Op: c.c.op}
	switch c.c.op {
	case "and", "or", "not":
		ok := true
		for i, a := range c.c.args {
			pa, aok := b.condArg(n, at, i, a)
			ok = ok && aok
			if pa == nil {
				pa = &backends.Condition{Op: "and"} // the zero Cond holds
			}
			out.Args = append(out.Args, *pa)
		}
		return out, ok
	}
	if c.c.src.kind == srcItem {
		b.errs.Add(field.Invalid(at.Path(), "item", "a condition applies to the whole fan-out, so it cannot read one element"))
		return nil, false
	}
	if !b.useRef(n, at, c.c.src) {
		return nil, false
	}
	r := b.planRef(c.c.src)
	out.Ref = &r
	if c.c.other != nil {
		if !slices.Contains(compareOps, c.c.op) {
			op := at.Child("op")
			b.errs.Add(field.NotSupported(op.Path(), c.c.op, compareOps))
			return nil, false
		}
		if c.c.other.kind == srcItem {
			b.errs.Add(field.Invalid(at.Path(), "item", "a condition applies to the whole fan-out, so it cannot read one element"))
			return nil, false
		}
		if !b.useRef(n, at, c.c.other) {
			return nil, false
		}
		o := b.planRef(c.c.other)
		out.Other = &o
		return out, true
	}
	if c.c.op != "true" {
		v, err := json.Marshal(condValue(c.c.value))
		if err != nil {
			b.errs.Add(field.Invalid(at.Path(), fmt.Sprint(c.c.value), "cannot be encoded as JSON: %v", err))
			return nil, false
		}
		out.Value = v
	}
	return out, true
}

// condArg is cond of argument i of a condition at at. It makes the
// argument's Lazy outside the loop over the arguments (see walkChild).
//
//go:noinline
func (b *builder) condArg(n *node, at *field.Lazy, i int, c Cond) (*backends.Condition, bool) {
	ai := at.Index(i)
	return b.cond(n, &ai, c)
}

func (b *builder) forEach(n *node, at *field.Lazy) *backends.ForEach {
	fe := n.forEach
	b.checkFanBounds(at, fe) // pipeline/bounds.go
	if fe.maxFailed < 0 {
		p := at.Child("maxFailed")
		b.errs.Add(field.Invalid(p.Path(), fe.maxFailed, "must not be negative; zero tolerates no failed instance"))
	}
	if x := fe.maxFailedF; math.IsNaN(x) || x < 0 || x > 1 {
		p := at.Child("maxFailedFraction")
		b.errs.Add(field.Invalid(p.Path(), x, "must be between 0 and 1 (a fraction of the instances)"))
	}
	items := at.Child("items")
	if !b.useRef(n, &items, fe.items) {
		return nil
	}
	if fe.items.kind == srcItem || fe.items.kind == srcRun {
		b.errs.Add(field.Invalid(items.Path(), fe.items.describe(), "a fan-out iterates over a step output, a parameter or a constant list"))
		return nil
	}
	if k := fe.items.typ.Kind(); k != reflect.Slice && k != reflect.Array {
		b.errs.Add(field.Invalid(items.Path(), fe.items.describe(), "fan-out over a non-list: the value has type %v; iterate over a slice", fe.items.typ))
		return nil
	}
	return &backends.ForEach{Items: b.planRef(fe.items), Parallelism: fe.parallelism, MaxFailed: fe.maxFailed, MaxFailedFraction: fe.maxFailedF}
}

func (b *builder) after(n *node, at *field.Lazy) {
	if n.badAfter > 0 {
		b.errs.Add(field.NotFound(at.Path(), n.badAfter, "%d dependencies name a step that was never added; pass the Step that Add returned", n.badAfter))
	}
	if n.exit && len(n.after) > 0 {
		b.errs.Add(field.Invalid(at.Path(), len(n.after), "the exit handler always runs last; it cannot be ordered after steps"))
		return
	}
	for i, m := range n.after {
		switch {
		case m.p != b.p:
			p := at.Index(i)
			b.errs.Add(field.Invalid(p.Path(), m.name, "is a step of pipeline %q; a step can only wait for steps of its own pipeline", m.p.name))
		case m.exit:
			p := at.Index(i)
			b.errs.Add(field.Invalid(p.Path(), m.name, "the exit handler runs last; nothing can be ordered after it"))
		case m == n:
			p := at.Index(i)
			b.errs.Add(field.Invalid(p.Path(), m.name, "a step cannot wait for itself"))
		default:
			b.addDep(n, m.index)
		}
	}
}

// topoOrder returns the non-exit steps in topological order, ties broken by
// the order they were added, and reports each cycle once.
func (b *builder) topoOrder() []*node {
	all := b.p.nodes
	if order, ok := b.addedInOrder(); ok {
		return order
	}
	indeg := make([]int32, len(all))
	// users[userStart[m]:userStart[m+1]] are the steps that wait for m.
	userStart := make([]int32, len(all)+1)
	for _, n := range all {
		if n.exit {
			continue
		}
		deps := b.depsOf(n)
		indeg[n.index] = int32(len(deps))
		for _, m := range deps {
			userStart[m+1]++
		}
	}
	for i := range all {
		userStart[i+1] += userStart[i]
	}
	users := make([]int32, userStart[len(all)])
	fill := slices.Clone(userStart[:len(all)])
	nodes := 0
	for _, n := range all {
		if n.exit {
			continue
		}
		nodes++
		for _, m := range b.depsOf(n) {
			users[fill[m]] = int32(n.index)
			fill[m]++
		}
	}
	// A min-heap on index keeps the order stable.
	h := &nodeHeap{}
	for _, n := range all {
		if !n.exit && indeg[n.index] == 0 {
			h.push(n)
		}
	}
	order := make([]*node, 0, nodes)
	for h.len() > 0 {
		n := h.pop()
		order = append(order, n)
		for _, u := range users[userStart[n.index]:userStart[n.index+1]] {
			indeg[u]--
			if indeg[u] == 0 {
				h.push(all[u])
			}
		}
	}
	if len(order) < nodes {
		b.reportCycles(indeg)
	}
	return order
}

// addedInOrder returns the non-exit steps in the order they were added
// when that is a topological order: when every step waits only for
// steps added before it, as it does unless After names a later step. The
// order is then the one topoOrder's sort gives (each step, when its turn
// comes, is the first added of those ready).
//
// It reads the nodes' indices (their places in b.p.nodes) and tells the
// exit handlers by b.p.exits, not from the nodes: once every step is
// lowered, loading each node again would be a cache miss.
func (b *builder) addedInOrder() ([]*node, bool) {
	nodes := b.p.nodes
	for i := range nodes {
		for _, m := range b.depList[b.depStart[i]:b.depStart[i+1]] {
			if int(m) >= i && !b.isExit(nodes[i]) {
				return nil, false
			}
		}
	}
	order := make([]*node, 0, len(nodes))
	for _, n := range nodes {
		if !b.isExit(n) {
			order = append(order, n)
		}
	}
	return order, true
}

// reportCycles reports one cycle in each strongly connected component of
// the steps that topoOrder could not order: every independent cycle is
// reported, each once, even when a walk from one cycle could lead into
// another.
func (b *builder) reportCycles(indeg []int32) {
	var nodes []*node
	for _, n := range b.p.nodes {
		if !n.exit {
			nodes = append(nodes, n)
		}
	}
	left := map[*node]bool{}
	for _, n := range nodes {
		if indeg[n.index] > 0 {
			left[n] = true
		}
	}
	// depsIn returns n's dependencies in left, by index (deterministic).
	depsIn := func(n *node) []*node {
		var ds []*node
		for _, i := range b.depsOf(n) {
			if m := b.p.nodes[i]; left[m] {
				ds = append(ds, m)
			}
		}
		slices.SortFunc(ds, func(a, c *node) int { return cmp.Compare(a.index, c.index) })
		return ds
	}
	// Tarjan's strongly connected components.
	comp := map[*node]int{}
	idx, low := map[*node]int{}, map[*node]int{}
	onStack := map[*node]bool{}
	var stack []*node
	ncomp := 0
	var visit func(n *node)
	visit = func(n *node) {
		idx[n], low[n] = len(idx), len(idx)
		stack = append(stack, n)
		onStack[n] = true
		for _, m := range depsIn(n) {
			if _, seen := idx[m]; !seen {
				visit(m)
				low[n] = min(low[n], low[m])
			} else if onStack[m] {
				low[n] = min(low[n], idx[m])
			}
		}
		if low[n] == idx[n] {
			for {
				m := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[m] = false
				comp[m] = ncomp
				if m == n {
					break
				}
			}
			ncomp++
		}
	}
	for _, n := range nodes {
		if _, seen := idx[n]; left[n] && !seen {
			visit(n)
		}
	}
	size := make([]int, ncomp)
	for _, c := range comp {
		size[c]++
	}
	reported := make([]bool, ncomp)
	for _, start := range nodes {
		c, ok := comp[start]
		if !ok || size[c] < 2 || reported[c] {
			continue
		}
		reported[c] = true
		// Walk dependencies inside the component until a node repeats.
		pos := map[*node]int{}
		var walk []*node
		n := start
		for {
			if _, ok := pos[n]; ok {
				break
			}
			pos[n] = len(walk)
			walk = append(walk, n)
			for _, m := range depsIn(n) {
				if comp[m] == c {
					n = m
					break
				}
			}
		}
		cycle := walk[pos[n]:]
		first := slices.MinFunc(cycle, func(a, c *node) int { return cmp.Compare(a.index, c.index) })
		k := slices.Index(cycle, first)
		cycle = append(cycle[k:], cycle[:k]...)
		names := make([]string, 0, len(cycle)+1)
		for _, m := range cycle {
			names = append(names, m.name)
		}
		names = append(names, first.name)
		at := b.nodeAt(first)
		after := at.Child("after")
		b.errs.Add(field.Invalid(after.Path(), first.name, "dependency cycle: %s waits for itself (through After or data); remove one edge", strings.Join(names, " -> ")))
	}
}

type nodeHeap struct{ s []*node }

func (h *nodeHeap) len() int { return len(h.s) }

func (h *nodeHeap) push(n *node) {
	h.s = append(h.s, n)
	i := len(h.s) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if h.s[parent].index <= h.s[i].index {
			break
		}
		h.s[parent], h.s[i] = h.s[i], h.s[parent]
		i = parent
	}
}

func (h *nodeHeap) pop() *node {
	top := h.s[0]
	last := len(h.s) - 1
	h.s[0] = h.s[last]
	h.s = h.s[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h.s) && h.s[l].index < h.s[m].index {
			m = l
		}
		if r < len(h.s) && h.s[r].index < h.s[m].index {
			m = r
		}
		if m == i {
			return top
		}
		h.s[i], h.s[m] = h.s[m], h.s[i]
		i = m
	}
}

var mayHold sync.Map // reflect.Type -> bool

// mayHoldRef reports whether a value of type t can contain a Ref, so that
// large inputs of plain data (say a []float64) are not walked.
func mayHoldRef(t reflect.Type) bool {
	if v, ok := mayHold.Load(t); ok {
		return v.(bool)
	}
	r := computeMayHold(t, map[reflect.Type]bool{})
	mayHold.Store(t, r)
	return r
}

func computeMayHold(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t.Implements(refSourceType) {
		return true
	}
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return computeMayHold(t.Elem(), seen)
	case reflect.Map:
		return computeMayHold(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if (f.IsExported() || f.Anonymous) && computeMayHold(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

// withoutErrors drops from err the errors equal to one of drop.
func withoutErrors(err error, drop []*field.Error) error {
	if len(drop) == 0 {
		return err
	}
	var l field.List
	for _, e := range field.Errors(err) {
		if !slices.ContainsFunc(drop, func(d *field.Error) bool {
			return d.Field == e.Field && d.Type == e.Type && d.Detail == e.Detail && fmt.Sprint(d.BadValue) == fmt.Sprint(e.BadValue)
		}) {
			l.Add(e)
		}
	}
	return l.Err()
}

// withoutField drops the errors at the relative path f from err.
func withoutField(err error, f string) error {
	var l field.List
	for _, e := range field.Errors(err) {
		if e.Field != f {
			l.Add(e)
		}
	}
	return l.Err()
}
