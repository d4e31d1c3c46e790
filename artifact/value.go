package artifact

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Values that do not fit in-band. A backend that carries a step's output
// in a bounded place (a termination message, a workflow parameter) has
// the task mode call [Promote] on it: parts of the output are stored as
// artifacts of kind "value" and replaced by their description, and
// [Resolve] puts them back before the consumer decodes its input. Users
// never see either.

// ValuesDir is the directory, under a step's (or instance's) layout path,
// that holds its promoted values. [Store.DeleteValues] removes a run's.
const ValuesDir = ".values"

// Promote returns out, a task's JSON output, made to fit in limit bytes:
// when it is longer, its largest fields (of an object) or elements (of a
// list) are stored, largest first, as "value" artifacts in the store of
// the task that runs in ctx until it fits, so that refs to its other
// fields and fan-outs over its lists still work in-band; when that is
// not enough, the whole output is stored. limit ≤ 0 means no limit.
func Promote(ctx context.Context, out json.RawMessage, limit int) (json.RawMessage, error) {
	if limit <= 0 || len(out) <= limit {
		return out, nil
	}
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, fmt.Errorf("the output is %d bytes, more than the %d this backend carries in-band, and %w", len(out), limit, err)
	}
	store := func(name string, v json.RawMessage) (json.RawMessage, error) {
		w, err := newWriter(ctx, sc.Store, sc.Producer, ValuesDir+"/"+name, MediaType("application/json"))
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(v); err != nil {
			w.Abort()
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		a := w.Artifact()
		a.Kind = KindValue
		return json.Marshal(a)
	}
	if got, ok, err := promoteParts(out, limit, store); err != nil || ok {
		return got, err
	}
	return store("output", out)
}

// promoteParts stores the largest members of an object or list out until
// it fits in limit; ok is false when out is neither or cannot be made to
// fit that way.
func promoteParts(out json.RawMessage, limit int, store func(string, json.RawMessage) (json.RawMessage, error)) (json.RawMessage, bool, error) {
	type part struct {
		name string
		v    json.RawMessage
	}
	var (
		parts []part
		obj   bool
	)
	trimmed := bytes.TrimSpace(out)
	switch {
	case len(trimmed) > 0 && trimmed[0] == '{':
		var m map[string]json.RawMessage
		if json.Unmarshal(out, &m) != nil {
			return nil, false, nil
		}
		for _, k := range sortedKeys(m) {
			parts = append(parts, part{k, m[k]})
		}
		obj = true
	case len(trimmed) > 0 && trimmed[0] == '[':
		var l []json.RawMessage
		if json.Unmarshal(out, &l) != nil {
			return nil, false, nil
		}
		for i, v := range l {
			parts = append(parts, part{fmt.Sprint(i), v})
		}
	default:
		return nil, false, nil
	}
	// Estimate first: promote, largest first, the parts whose
	// replacement by a ~pointer makes the whole fit.
	const pointer = 600
	order := make([]int, len(parts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(parts[b].v), len(parts[a].v)) })
	size := len(out)
	var chosen []int
	for _, i := range order {
		if size <= limit || len(parts[i].v) <= pointer {
			break
		}
		size -= len(parts[i].v) - pointer
		chosen = append(chosen, i)
	}
	if size > limit {
		return nil, false, nil
	}
	for _, i := range chosen {
		name := "output." + strings.ReplaceAll(parts[i].name, "/", "_")
		if CheckName(name) != nil {
			name = fmt.Sprintf("output.%d", i)
		}
		p, err := store(name, parts[i].v)
		if err != nil {
			return nil, false, err
		}
		parts[i].v = p
	}
	var b bytes.Buffer
	b.WriteByte("[{"[b2i(obj)])
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(',')
		}
		if obj {
			k, _ := json.Marshal(p.name)
			b.Write(k)
			b.WriteByte(':')
		}
		b.Write(p.v)
	}
	b.WriteByte("]}"[b2i(obj)])
	if b.Len() > limit {
		return nil, false, nil
	}
	return b.Bytes(), true, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// valueMarker is in the JSON of every promoted value.
var valueMarker = []byte(`"kind":"value"`)

// Resolve returns in, a JSON document, with every promoted value in it
// (see [Promote]) replaced by its stored bytes, read from the store of the
// task that runs in ctx and checked against their digest. A document
// without promoted values is returned as it is.
func Resolve(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
	if !bytes.Contains(in, valueMarker) {
		return in, nil
	}
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, fmt.Errorf("the input holds values stored out of band, and %w", err)
	}
	return resolve(ctx, sc.Store, in)
}

func resolve(ctx context.Context, s *Store, in json.RawMessage) (json.RawMessage, error) {
	if !bytes.Contains(in, valueMarker) {
		return in, nil
	}
	t := bytes.TrimSpace(in)
	switch {
	case len(t) > 0 && t[0] == '{':
		if a, ok := asArtifact(t); ok && a.Kind == KindValue {
			r, err := a.open(ctx, s)
			if err != nil {
				return nil, err
			}
			defer r.Close()
			var b bytes.Buffer
			if _, err := b.ReadFrom(r); err != nil {
				return nil, err
			}
			return resolve(ctx, s, b.Bytes())
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(t, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			r, err := resolve(ctx, s, v)
			if err != nil {
				return nil, err
			}
			m[k] = r
		}
		return json.Marshal(m)
	case len(t) > 0 && t[0] == '[':
		var l []json.RawMessage
		if err := json.Unmarshal(t, &l); err != nil {
			return nil, err
		}
		for i, v := range l {
			r, err := resolve(ctx, s, v)
			if err != nil {
				return nil, err
			}
			l[i] = r
		}
		return json.Marshal(l)
	}
	return in, nil
}

// artifactKeys are the JSON keys of an Artifact.
var artifactKeys = []string{"kind", "uri", "digest", "size", "mediaType", "producer", "created", "metadata"}

// asArtifact decodes obj as an artifact when it is one: it has exactly
// artifact keys, among them a known kind, a URI and a sha256 digest.
func asArtifact(obj []byte) (Artifact, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return Artifact{}, false
	}
	for k := range m {
		if !slices.Contains(artifactKeys, k) {
			return Artifact{}, false
		}
	}
	var a Artifact
	if json.Unmarshal(obj, &a) != nil || !a.Kind.known() || a.URI == "" || !strings.HasPrefix(a.Digest, "sha256:") {
		return Artifact{}, false
	}
	return a, true
}

// digestMarker is in the JSON of every artifact.
var digestMarker = []byte(`"digest":"sha256:`)

// Canonical returns doc, a JSON document, with every artifact in it
// replaced by what its bytes are — kind, media type and digest — without
// where they are or who wrote them. Cache keys are computed from it, so
// the same bytes under another run's URI are a hit and changed bytes a
// miss. A document without artifacts is returned as it is.
func Canonical(doc json.RawMessage) json.RawMessage {
	if !bytes.Contains(doc, digestMarker) {
		return doc
	}
	t := bytes.TrimSpace(doc)
	switch {
	case len(t) > 0 && t[0] == '{':
		if a, ok := asArtifact(t); ok {
			c, _ := json.Marshal(struct {
				Kind      Kind   `json:"kind"`
				MediaType string `json:"mediaType,omitempty"`
				Digest    string `json:"digest"`
			}{a.Kind, a.MediaType, a.Digest})
			return c
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(t, &m) != nil {
			return doc
		}
		for k, v := range m {
			m[k] = Canonical(v)
		}
		c, _ := json.Marshal(m)
		return c
	case len(t) > 0 && t[0] == '[':
		var l []json.RawMessage
		if json.Unmarshal(t, &l) != nil {
			return doc
		}
		for i, v := range l {
			l[i] = Canonical(v)
		}
		c, _ := json.Marshal(l)
		return c
	}
	return doc
}

// DeleteValues deletes the values a run of pipeline promoted (see
// [Promote]) and returns how many it deleted; backends call it when the
// run ends. The run's artifacts stay.
func (s *Store) DeleteValues(ctx context.Context, pipeline, run string) (int, error) {
	objs, err := s.List(ctx, pipeline, run)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range objs {
		if !strings.Contains(o.Key, "/"+ValuesDir+"/") {
			continue
		}
		if err := s.bucket.Delete(ctx, s.prefix+o.Key); err != nil { // List opened it
			return n, fmt.Errorf("artifact store %s: deleting %s: %w", s.root, o.Key, err)
		}
		n++
	}
	return n, nil
}

// IsValue reports whether v, a JSON document, is one promoted value (see
// [Promote]): the description that stands in for the value.
func IsValue(v json.RawMessage) bool {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || t[0] != '{' || !bytes.Contains(t, valueMarker) {
		return false
	}
	a, ok := asArtifact(t)
	return ok && a.Kind == KindValue
}

// HasValues reports whether doc holds promoted values anywhere. Backends
// do not cache such an output: its values are deleted with its run.
func HasValues(doc json.RawMessage) bool { return bytes.Contains(doc, valueMarker) }

// Resolve is the package's [Resolve] with s as the store: for backends
// that look inside a step's output themselves (a ref to a field of a
// promoted value, a fan-out over a promoted list).
func (s *Store) Resolve(ctx context.Context, doc json.RawMessage) (json.RawMessage, error) {
	return resolve(ctx, s, doc)
}
