package kubejob

import (
	"encoding/json"
	"testing"

	"github.com/sluice-ml/sluice/backends"
)

// stringsJSON writes what json.Marshal writes, whether or not a name
// needs escaping.
func TestStringsJSONIsMarshal(t *testing.T) {
	for _, names := range [][]string{
		{}, {"a"}, {"train", "eval-2", "x"}, {""}, {`q"uote`}, {`back\slash`}, {"<html>&"}, {"tab\t", "nl\n"},
		{"ünï", "日本"}, {"bad\xff"}, {"del\x7f"}, {"sep\u2028"},
	} {
		want, err := json.Marshal(names)
		if err != nil {
			t.Fatal(err)
		}
		if got := stringsJSON(names); got != string(want) {
			t.Errorf("stringsJSON(%q) = %s, json.Marshal: %s", names, got, want)
		}
	}
}

// renderInput is in.Render with refText for each ref, errors included.
func TestRenderInputIsRender(t *testing.T) {
	step := func(name string, path ...string) backends.Ref {
		return backends.Ref{Kind: backends.RefStep, Step: name, Path: path}
	}
	refs := []backends.Ref{
		step("train"), step("eval", "metrics", "acc"),
		{Kind: backends.RefParam, Param: "lr"}, {Kind: backends.RefParam, Param: "cfg", Path: []string{"a"}},
		{Kind: backends.RefItem}, {Kind: backends.RefRun},
		{Kind: backends.RefConst, Value: json.RawMessage(`{ "a" : [1, 2] }`)},
		{Kind: backends.RefConst, Value: json.RawMessage(`not json`)},
		{Kind: backends.RefConst, Value: json.RawMessage(`{"a":1}`), Path: []string{"a"}},
		{Kind: backends.RefCollect, Elems: []backends.Ref{step("a"), {Kind: backends.RefConst, Value: json.RawMessage(` 3 `)}, {Kind: backends.RefCollect}}},
		{Kind: backends.RefCollect, Elems: []backends.Ref{step("a")}, Path: []string{"x"}},
		{Kind: backends.RefMeta, Meta: backends.Meta("runID")},
	}
	var templates []string
	for i := range refs {
		templates = append(templates, `{"x":`+backends.Placeholder(i)+`,"s":"{\"$sluice\":0}"}`)
	}
	templates = append(templates, `[]`, `{"a":1}`, `[`+backends.Placeholder(0)+`,`+backends.Placeholder(11)+`]`,
		`{"$sluice":`, `{"$sluice":x}`, `{"$sluice":99}`, `{"$sluice":-1}`)
	for _, tmpl := range templates {
		in := backends.Input{Template: json.RawMessage(tmpl), Refs: refs}
		want, werr := in.Render(func(i int) (string, error) { return refText(in.Refs[i]), nil })
		got, err := renderInput(in)
		if got != want || (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
			t.Errorf("template %s:\nrenderInput: %q, %v\nRender:      %q, %v", tmpl, got, err, want, werr)
		}
	}
}
