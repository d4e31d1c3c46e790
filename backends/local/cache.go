package local

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sluice-ml/sluice/backends"
)

// KeyParts are what a cache key is computed from (see
// [backends.CacheKeyParts]). The cache stores them next to each entry
// (<key>.key.json), so that a miss can be explained with [CacheDiff].
type KeyParts = backends.CacheKeyParts

// CacheDiff explains why two keys differ, one line per changed part, for
// example ["image changed", "input lr changed", "input seed added"].
// Input fields are compared at the top level, in name order.
func CacheDiff(old, new KeyParts) []string {
	var out []string
	for _, p := range []struct {
		name string
		same bool
	}{
		{"task", old.Task == new.Task},
		{"kind", old.Kind == new.Kind},
		{"image", old.Image == new.Image},
		{"command", slices.Equal(old.Command, new.Command)},
		{"args", slices.Equal(old.Args, new.Args)},
		{"env", slices.Equal(old.Env, new.Env)},
		{"outputs", slices.Equal(old.Outputs, new.Outputs)},
		{"version", old.Version == new.Version},
	} {
		if !p.same {
			out = append(out, p.name+" changed")
		}
	}
	return append(out, inputDiff(old.Input, new.Input)...)
}

func inputDiff(a, b json.RawMessage) []string {
	if bytes.Equal(a, b) {
		return nil
	}
	var oa, ob map[string]json.RawMessage
	if json.Unmarshal(a, &oa) != nil || json.Unmarshal(b, &ob) != nil || oa == nil || ob == nil {
		return []string{"input changed"}
	}
	keys := maps.Clone(oa)
	maps.Copy(keys, ob)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		va, ina := oa[k]
		vb, inb := ob[k]
		switch {
		case !ina:
			out = append(out, "input "+k+" added")
		case !inb:
			out = append(out, "input "+k+" removed")
		case !bytes.Equal(va, vb):
			out = append(out, "input "+k+" changed")
		}
	}
	return out
}

// cacheEntry is one key in the on-disk cache: <dir>/<key[:2]>/<key>.json
// holds the output, <key>.key.json the parts. last is where the parts of
// the task's latest stored entry go, to explain the next miss.
type cacheEntry struct {
	dir, key, last string
	parts          KeyParts
}

// cacheEntry returns the cache entry of the task at at, or nil when it is
// not cached; the key goes into its status.
func (r *run) cacheEntry(at loc, s *backends.Step, input json.RawMessage) *cacheEntry {
	dir := r.b.opts.CacheDir
	if dir == "" || !s.Cache.Enabled {
		return nil
	}
	parts, err := backends.NewCacheKeyParts(s, input)
	if err != nil {
		r.logf(at, "cache: not cached: %v", err)
		return nil
	}
	e := &cacheEntry{dir: dir, key: parts.Key(), parts: parts,
		last: filepath.Join(dir, "last", r.plan.Name, r.taskName(at)+".json")}
	r.update(at.step, func(st *backends.RunStatus) { statusAt(st, at).CacheKey = e.key })
	return e
}

func (e *cacheEntry) path(suffix string) string {
	return filepath.Join(e.dir, e.key[:2], e.key+suffix)
}

// load returns the stored output, if any.
func (e *cacheEntry) load() (json.RawMessage, bool) {
	b, err := os.ReadFile(e.path(".json"))
	if err != nil || !json.Valid(b) {
		return nil, false
	}
	return b, true
}

// explainMiss compares the key with the task's latest stored one:
// "cache miss: input lr changed", or "" when there is nothing to compare.
func (e *cacheEntry) explainMiss() string {
	b, err := os.ReadFile(e.last)
	if err != nil {
		return ""
	}
	var old KeyParts
	if json.Unmarshal(b, &old) != nil {
		return ""
	}
	diff := CacheDiff(old, e.parts)
	if len(diff) == 0 {
		return ""
	}
	return "cache miss: " + strings.Join(diff, ", ")
}

// store saves out under the key, with its parts.
func (e *cacheEntry) store(out json.RawMessage) error {
	manifest, err := json.MarshalIndent(e.parts, "", "  ")
	if err != nil {
		return err
	}
	// The output goes last: its presence makes the entry valid.
	if err := writeAtomic(e.path(".key.json"), manifest); err != nil {
		return err
	}
	if err := writeAtomic(e.path(".json"), out); err != nil {
		return err
	}
	return writeAtomic(e.last, manifest)
}

// writeAtomic writes data to name through a temporary file and a rename,
// so readers never see a partial file.
func writeAtomic(name string, data []byte) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
