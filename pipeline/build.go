package pipeline

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"github.com/sluice-ml/sluice/artifact"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

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
type builder struct {
	p     *Pipeline
	root  *field.Path
	errs  field.List
	names map[*node]string // DNS-1123 step names
	deps  map[*node]map[*node]bool
	paths map[*node]*field.Path
	// nameErrs holds each step's name problems, reported with the step's
	// other problems so that errors come grouped by step.
	nameErrs map[*node][]*field.Error
	// defaultResErrs are the problems of the default profile, reported
	// once under pipeline.defaults rather than again for every task.
	defaultResErrs []*field.Error
	// res resolves each distinct resource profile once.
	res *resources.Resolver
}

// build validates p and, when it is valid, lowers it to a Plan.
func (p *Pipeline) build(overrides map[string]string) (*backends.Plan, error) {
	if p == nil {
		return nil, misuse("Validate of a nil *Pipeline; create one with pipeline.New")
	}
	b := &builder{
		res:   resources.NewResolver(p.pools),
		p:     p,
		root:  field.NewPath("pipeline"),
		names: make(map[*node]string, len(p.nodes)),
		deps:  make(map[*node]map[*node]bool, len(p.nodes)),
		paths: make(map[*node]*field.Path, len(p.nodes)),

		nameErrs: map[*node][]*field.Error{},
	}
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

	steps := make(map[*node]*backends.Step, len(p.nodes))
	for _, n := range p.nodes {
		steps[n] = b.step(n)
	}
	for i, n := range p.exits {
		if i > 0 {
			b.errs.Add(field.Duplicate(b.root.Child("onExit"), n.name, "a pipeline has one exit handler; %q is already set", p.exits[0].name))
		}
	}
	order := b.topoOrder()
	if b.errs.Len() > 0 {
		return nil, b.errs.Err()
	}
	plan.Steps = make([]backends.Step, 0, len(order))
	for _, n := range order {
		plan.Steps = append(plan.Steps, *steps[n])
	}
	if len(p.exits) == 1 {
		plan.Exit = steps[p.exits[0]]
	}
	return plan, nil
}

// checkName checks a user-given name and returns its DNS-1123 form.
func checkName(path *field.Path, name string) (string, []*field.Error) {
	if name == "" {
		return "", []*field.Error{field.Required(path, "give it a name: letters, digits and '-', at most %d characters", MaxNameLength)}
	}
	var errs []*field.Error
	if len(name) > MaxNameLength {
		errs = append(errs, field.TooLong(path, name, MaxNameLength))
	}
	s := naming.Sanitize(name)
	if s == "" {
		errs = append(errs, field.Invalid(path, name, "has no ASCII letter or digit to build a DNS-1123 name from; use a name such as %q", "train-model"))
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

// nodeNames checks every step's name and assigns DNS-1123 names.
func (b *builder) nodeNames() {
	tasks := b.root.Child("tasks")
	byRaw := make(map[string]*node, len(b.p.nodes))
	bySan := make(map[string]*node, len(b.p.nodes))
	for _, n := range b.p.nodes {
		raw := n.name
		path := tasks.Key(raw)
		if raw == "" {
			path = tasks.Index(n.index)
		}
		b.paths[n] = path
		var name string
		var errs []*field.Error
		if n.fanIndex >= 0 {
			// A generated name: check the base name; fit the rest.
			base := raw[:strings.LastIndexByte(raw, '-')]
			_, errs = checkName(path.Child("name"), base)
			name = naming.Fit(naming.Sanitize(raw), naming.MaxLabel)
		} else {
			name, errs = checkName(path.Child("name"), raw)
		}
		b.names[n] = name
		b.nameErrs[n] = errs
		if raw == "" || name == "" {
			continue
		}
		if m, ok := byRaw[raw]; ok {
			b.nameErrs[n] = append(b.nameErrs[n], field.Duplicate(path.Child("name"), raw, "task %d has the same name; give one a new name with WithName", m.index))
			continue
		}
		byRaw[raw] = n
		if m, ok := bySan[name]; ok {
			b.nameErrs[n] = append(b.nameErrs[n], field.Duplicate(path.Child("name"), raw, "becomes %q, as %q does; rename one", name, m.name))
			continue
		}
		bySan[name] = n
	}
}

// step validates n and lowers it (the result is used only if the whole
// pipeline is valid).
func (b *builder) step(n *node) *backends.Step {
	path := b.paths[n]
	d := b.p.defaults
	spec := n.spec.Clone()
	b.errs.Add(b.nameErrs[n]...)
	specErrs := spec.Validate()
	if len(b.nameErrs[n]) > 0 {
		// Name problems are reported once, from the name checks above.
		specErrs = withoutField(specErrs, "name")
	}
	b.errs.AddUnder(path, specErrs)
	if spec.Retry == nil {
		r := d.Retry
		spec.Retry = &r
	}
	if spec.Timeout == 0 {
		spec.Timeout = d.Timeout
	}
	spec.Resources = resources.Merge(d.Resources, n.spec.Resources)
	resolved, err := b.res.Resolve(spec.Resources)
	b.errs.AddUnder(path.Child("resources"), withoutErrors(err, b.defaultResErrs))

	st := &backends.Step{
		Name:        b.names[n],
		DisplayName: n.name,
		Task:        spec,
		Resolved:    resolved,
		Invoke:      n.invoke,
		Cache:       spec.Cache,
	}
	b.deps[n] = map[*node]bool{}
	st.Input = b.input(n, path.Child("input"))
	st.When = b.when(n, path.Child("when"))
	if n.forEach != nil {
		st.ForEach = b.forEach(n, path.Child("forEach"))
	}
	b.after(n, path.Child("after"))
	b.runChecks(n, path)
	for m := range b.deps[n] {
		st.DependsOn = append(st.DependsOn, b.names[m])
	}
	slices.Sort(st.DependsOn)
	return st
}

// useRef checks one use of a reference by n and records the dependency.
// It returns false when the reference is unusable.
func (b *builder) useRef(n *node, path *field.Path, s *source) bool {
	if s.err != "" {
		b.errs.Add(field.Invalid(path, s.describe(), "%s", s.err))
		return false
	}
	switch s.kind {
	case srcStep:
		switch {
		case s.zeroStep || s.node == nil:
			b.errs.Add(field.NotFound(path, "", "refers to a step that was never added; use the Step that Add returned"))
			return false
		case s.node.p != b.p:
			b.errs.Add(field.Invalid(path, s.node.name, "refers to a step of pipeline %q; a pipeline can only read its own steps", s.node.p.name))
			return false
		case s.node.exit:
			b.errs.Add(field.Invalid(path, s.node.name, "the exit handler runs last, so no step can read its output"))
			return false
		case n.exit:
			b.errs.Add(field.Invalid(path, s.node.name, "the exit handler runs even when steps fail, so it can read only parameters, the run's facts (RunID, RunStarted, RunScheduled) and Pipeline.Status"))
			return false
		case s.node == n:
			b.errs.Add(field.Invalid(path, s.node.name, "a step cannot read its own output"))
			return false
		}
		b.deps[n][s.node] = true
	case srcParam:
		if s.param.pipe != b.p {
			b.errs.Add(field.Invalid(path, s.param.name, "refers to a parameter of pipeline %q; declare it on this pipeline", s.param.pipe.name))
			return false
		}
	case srcItem:
		if s.node != n {
			name := ""
			if s.node != nil {
				name = s.node.name
			}
			b.errs.Add(field.Invalid(path, name, "the element of fan-out %q can only be used in that fan-out's input", name))
			return false
		}
	case srcRun:
		if s.pipe != b.p {
			b.errs.Add(field.Invalid(path, "run", "refers to the status of pipeline %q", s.pipe.name))
			return false
		}
		if !n.exit {
			b.errs.Add(field.Invalid(path, "run", "Pipeline.Status can only be read by the exit handler (see OnExit)"))
			return false
		}
	case srcCollect:
		ok := true
		for i, e := range s.elems {
			ok = b.useRef(n, path.Index(i), e) && ok
		}
		return ok
	}
	return true
}

func (b *builder) planRef(s *source) backends.Ref {
	r := backends.Ref{Path: slices.Clone(s.path)}
	switch s.kind {
	case srcStep:
		r.Kind, r.Step = backends.RefStep, b.names[s.node]
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
		for _, e := range s.elems {
			r.Elems = append(r.Elems, b.planRef(e))
		}
	}
	return r
}

// placeholderPrefix starts every backends.Placeholder.
var placeholderPrefix = strings.TrimSuffix(backends.Placeholder(0), "0}")

// input checks every Ref in n's input and builds the JSON template.
func (b *builder) input(n *node, path *field.Path) backends.Input {
	found := map[int64]*source{}
	uses := map[int64]int{} // how often each Ref occurs; the JSON cannot hold more
	ok := true
	walkRefs(reflect.ValueOf(n.input), path, 0, nil, func(p *field.Path, s *source) {
		found[s.id] = s
		uses[s.id]++
		ok = b.useRef(n, p, s) && ok
	})
	raw, err := json.Marshal(n.input)
	if err != nil {
		b.errs.Add(field.Invalid(path, fmt.Sprintf("%T", n.input), "cannot be encoded as JSON: %v", err))
		return backends.Input{}
	}
	if !ok {
		return backends.Input{}
	}
	if bytes.Contains(raw, []byte(placeholderPrefix)) {
		b.errs.Add(field.Invalid(path, fmt.Sprintf("%T", n.input), "holds the object key %q, which Sluice reserves for references; rename the key", "$sluice"))
		return backends.Input{}
	}
	const tok = `{"$sluice.ref":`
	var in backends.Input
	index := map[int64]int{}
	var out bytes.Buffer
	for {
		k := bytes.Index(raw, []byte(tok))
		if k < 0 {
			out.Write(raw)
			break
		}
		out.Write(raw[:k])
		raw = raw[k+len(tok):]
		end := bytes.IndexByte(raw, '}')
		id, _ := strconv.ParseInt(string(raw[:end]), 10, 64)
		raw = raw[end+1:]
		s, seen := found[id]
		if seen && uses[id] == 0 {
			b.errs.Add(field.Invalid(path, fmt.Sprintf("%T", n.input), "holds the object key %q, which Sluice reserves for references; rename the key", "$sluice.ref"))
			return backends.Input{}
		}
		uses[id]--
		if !seen {
			b.errs.Add(field.Invalid(path, fmt.Sprintf("%T", n.input), "holds a Ref that Sluice cannot see (in an unexported field or behind a custom MarshalJSON); make the field exported"))
			return backends.Input{}
		}
		i, done := index[id]
		if !done {
			i = len(in.Refs)
			index[id] = i
			in.Refs = append(in.Refs, b.planRef(s))
		}
		out.WriteString(backends.Placeholder(i))
	}
	in.Template = out.Bytes()
	return in
}

func (b *builder) when(n *node, path *field.Path) *backends.Condition {
	var cs []backends.Condition
	for i, c := range n.when {
		p := path
		if len(n.when) > 1 {
			p = path.Index(i)
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

func (b *builder) cond(n *node, path *field.Path, c Cond) (*backends.Condition, bool) {
	if c.c == nil {
		return nil, true
	}
	out := &backends.Condition{Op: c.c.op}
	switch c.c.op {
	case "and", "or", "not":
		ok := true
		for i, a := range c.c.args {
			pa, aok := b.cond(n, path.Index(i), a)
			ok = ok && aok
			if pa == nil {
				pa = &backends.Condition{Op: "and"} // the zero Cond holds
			}
			out.Args = append(out.Args, *pa)
		}
		return out, ok
	}
	if c.c.src.kind == srcItem {
		b.errs.Add(field.Invalid(path, "item", "a condition applies to the whole fan-out, so it cannot read one element"))
		return nil, false
	}
	if !b.useRef(n, path, c.c.src) {
		return nil, false
	}
	r := b.planRef(c.c.src)
	out.Ref = &r
	if c.c.other != nil {
		if !slices.Contains(compareOps, c.c.op) {
			b.errs.Add(field.NotSupported(path.Child("op"), c.c.op, compareOps))
			return nil, false
		}
		if c.c.other.kind == srcItem {
			b.errs.Add(field.Invalid(path, "item", "a condition applies to the whole fan-out, so it cannot read one element"))
			return nil, false
		}
		if !b.useRef(n, path, c.c.other) {
			return nil, false
		}
		o := b.planRef(c.c.other)
		out.Other = &o
		return out, true
	}
	if c.c.op != "true" {
		v, err := json.Marshal(condValue(c.c.value))
		if err != nil {
			b.errs.Add(field.Invalid(path, fmt.Sprint(c.c.value), "cannot be encoded as JSON: %v", err))
			return nil, false
		}
		out.Value = v
	}
	return out, true
}

func (b *builder) forEach(n *node, path *field.Path) *backends.ForEach {
	fe := n.forEach
	b.checkFanBounds(path, fe) // pipeline/bounds.go
	if fe.maxFailed < 0 {
		b.errs.Add(field.Invalid(path.Child("maxFailed"), fe.maxFailed, "must not be negative; zero tolerates no failed instance"))
	}
	if x := fe.maxFailedF; math.IsNaN(x) || x < 0 || x > 1 {
		b.errs.Add(field.Invalid(path.Child("maxFailedFraction"), x, "must be between 0 and 1 (a fraction of the instances)"))
	}
	items := path.Child("items")
	if !b.useRef(n, items, fe.items) {
		return nil
	}
	if fe.items.kind == srcItem || fe.items.kind == srcRun {
		b.errs.Add(field.Invalid(items, fe.items.describe(), "a fan-out iterates over a step output, a parameter or a constant list"))
		return nil
	}
	if k := fe.items.typ.Kind(); k != reflect.Slice && k != reflect.Array {
		b.errs.Add(field.Invalid(items, fe.items.describe(), "fan-out over a non-list: the value has type %v; iterate over a slice", fe.items.typ))
		return nil
	}
	return &backends.ForEach{Items: b.planRef(fe.items), Parallelism: fe.parallelism, MaxFailed: fe.maxFailed, MaxFailedFraction: fe.maxFailedF}
}

func (b *builder) after(n *node, path *field.Path) {
	if n.badAfter > 0 {
		b.errs.Add(field.NotFound(path, n.badAfter, "%d dependencies name a step that was never added; pass the Step that Add returned", n.badAfter))
	}
	if n.exit && len(n.after) > 0 {
		b.errs.Add(field.Invalid(path, len(n.after), "the exit handler always runs last; it cannot be ordered after steps"))
		return
	}
	for i, m := range n.after {
		p := path.Index(i)
		switch {
		case m.p != b.p:
			b.errs.Add(field.Invalid(p, m.name, "is a step of pipeline %q; a step can only wait for steps of its own pipeline", m.p.name))
		case m.exit:
			b.errs.Add(field.Invalid(p, m.name, "the exit handler runs last; nothing can be ordered after it"))
		case m == n:
			b.errs.Add(field.Invalid(p, m.name, "a step cannot wait for itself"))
		default:
			b.deps[n][m] = true
		}
	}
}

// topoOrder returns the non-exit steps in topological order, ties broken by
// the order they were added, and reports each cycle once.
func (b *builder) topoOrder() []*node {
	var nodes []*node
	for _, n := range b.p.nodes {
		if !n.exit {
			nodes = append(nodes, n)
		}
	}
	indeg := make(map[*node]int, len(nodes))
	users := make(map[*node][]*node, len(nodes))
	for _, n := range nodes {
		for m := range b.deps[n] {
			indeg[n]++
			users[m] = append(users[m], n)
		}
	}
	// A min-heap on index keeps the order stable.
	h := &nodeHeap{}
	for _, n := range nodes {
		if indeg[n] == 0 {
			h.push(n)
		}
	}
	order := make([]*node, 0, len(nodes))
	for h.len() > 0 {
		n := h.pop()
		order = append(order, n)
		for _, u := range users[n] {
			indeg[u]--
			if indeg[u] == 0 {
				h.push(u)
			}
		}
	}
	if len(order) < len(nodes) {
		b.reportCycles(nodes, indeg)
	}
	return order
}

// reportCycles reports one cycle in each strongly connected component of
// the steps that topoOrder could not order: every independent cycle is
// reported, each once, even when a walk from one cycle could lead into
// another.
func (b *builder) reportCycles(nodes []*node, indeg map[*node]int) {
	left := map[*node]bool{}
	for _, n := range nodes {
		if indeg[n] > 0 {
			left[n] = true
		}
	}
	// depsIn returns n's dependencies in left, by index (deterministic).
	depsIn := func(n *node) []*node {
		var ds []*node
		for m := range b.deps[n] {
			if left[m] {
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
		b.errs.Add(field.Invalid(b.paths[first].Child("after"), first.name, "dependency cycle: %s waits for itself (through After or data); remove one edge", strings.Join(names, " -> ")))
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

// walkKey identifies a pointer, map or slice on the walk's current path.
type walkKey struct {
	ptr uintptr
	typ reflect.Type
	len int
}

// maxWalkDepth bounds walkRefs like encoding/json bounds its own recursion;
// cycles are cut by onPath long before.
const maxWalkDepth = 1000

// walkRefs calls visit for every Ref with a source reachable from v through
// exported struct fields, pointers, interfaces, slices, arrays and maps. A
// value that contains itself is walked once (encoding/json then reports the
// cycle), so the walk is linear in the size of the input's JSON.
func walkRefs(v reflect.Value, path *field.Path, depth int, onPath map[walkKey]bool, visit func(*field.Path, *source)) {
	if !v.IsValid() || depth > maxWalkDepth {
		return
	}
	t := v.Type()
	if !mayHoldRef(t) {
		return
	}
	if t.Implements(refSourceType) {
		if v.Kind() == reflect.Pointer && v.IsNil() {
			return // a nil *Ref encodes as null: it refers to nothing
		}
		if v.CanInterface() {
			if s, _ := v.Interface().(refSource).refSrc(); s != nil {
				visit(path, s)
			}
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice:
		if v.IsNil() {
			return
		}
		k := walkKey{ptr: v.Pointer(), typ: t}
		if v.Kind() == reflect.Slice {
			k.len = v.Len()
		}
		if onPath[k] {
			return
		}
		if onPath == nil {
			onPath = map[walkKey]bool{}
		}
		onPath[k] = true
		defer delete(onPath, k)
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkRefs(v.Elem(), path, depth+1, onPath, visit)
		}
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if (!f.IsExported() && !f.Anonymous) || !mayHoldRef(f.Type) {
				continue // nothing to walk: no path to build
			}
			p := path.Child(f.Name)
			if f.Anonymous {
				p = path
			}
			walkRefs(v.Field(i), p, depth+1, onPath, visit)
		}
	case reflect.Slice, reflect.Array:
		if !mayHoldRef(t.Elem()) {
			return
		}
		for i := range v.Len() {
			walkRefs(v.Index(i), path.Index(i), depth+1, onPath, visit)
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, c reflect.Value) int { return cmp.Compare(fmt.Sprint(a), fmt.Sprint(c)) })
		for _, k := range keys {
			walkRefs(v.MapIndex(k), path.Key(fmt.Sprint(k)), depth+1, onPath, visit)
		}
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
