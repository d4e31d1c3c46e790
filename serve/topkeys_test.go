package serve

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

// topKeys finds the keys a decode into a map finds, in document order.
func TestTopKeys(t *testing.T) {
	for _, raw := range []string{
		`{}`, ` { } `, `{"a":1}`, `{"a" : [1, {"b": "}"}], "c\"d": "x\\", "e":{"f":[[]]}, "g": null, "h": -1.5e3}`,
		`{"x":"\u0041", "\u0042": true, "y": {"z": "]"}}`, "{\n\t\"a\"\r\n:\n1\n}",
	} {
		var got []string
		ok := topKeys([]byte(raw), func(k []byte) { got = append(got, string(k)) })
		assert.True(t, ok, raw)
		assert.Equal(t, decodedKeys(t, raw), sorted(got), raw)
	}
	for _, raw := range []string{`[]`, `"a"`, `1`, `null`, ` [{"a":1}]`} {
		assert.False(t, topKeys([]byte(raw), func([]byte) { t.Fatal("called") }), raw)
	}
}

func FuzzTopKeys(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[{"c":"]}"}]}`, `{"\\":"\""}`, `[1]`, `{"a":{"a":{}}}`, "{\"\xff\":1}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !json.Valid([]byte(raw)) {
			return // the request's decode rejects it first
		}
		var m map[string]json.RawMessage
		isObject := json.Unmarshal([]byte(raw), &m) == nil && m != nil
		var got []string
		ok := topKeys([]byte(raw), func(k []byte) { got = append(got, string(k)) })
		if ok != isObject {
			t.Fatalf("%q: topKeys says object %v, a decode %v", raw, ok, isObject)
		}
		if ok && !slices.Equal(decodedKeys(t, raw), sorted(got)) {
			t.Fatalf("%q: keys %q, a decode finds %q", raw, got, decodedKeys(t, raw))
		}
	})
}

func decodedKeys(t *testing.T, raw string) []string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return sorted(keys)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
