package kubepod

import (
	"bytes"
	"encoding/json"
	"strconv"

	yamlv2 "go.yaml.in/yaml/v2"
)

// Render writes obj, an API object, as YAML: what sigs.k8s.io/yaml writes
// for it (keys sorted, so the output is deterministic), without what the
// Go types marshal although it says nothing: the status, null values
// (such as the creation timestamp), empty "resources", "metadata",
// "inputs", "outputs" and "arguments" objects, and empty names. Labels,
// annotations, node selectors and data are written as they are.
func Render(obj any) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if m, ok := v.(map[string]any); ok {
		delete(m, "status")
	}
	return yamlv2.Marshal(prune(v))
}

// emptyObjects are the keys whose empty object Render leaves out.
var emptyObjects = map[string]bool{"resources": true, "metadata": true, "inputs": true, "outputs": true, "arguments": true}

// stringMaps are the keys of user-written string maps, which Render
// writes as they are (a label "name" may be empty).
var stringMaps = map[string]bool{"labels": true, "annotations": true, "nodeSelector": true, "matchLabels": true, "data": true}

// prune removes, in place, what Render leaves out below the top level and
// gives numbers their YAML types (see yamlNumbers); it returns v.
func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil || (k == "name" && e == "") {
				delete(x, k)
				continue
			}
			if stringMaps[k] {
				continue
			}
			x[k] = prune(e)
			if m, ok := x[k].(map[string]any); ok && len(m) == 0 && emptyObjects[k] {
				delete(x, k)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = prune(e)
		}
	case json.Number:
		return yamlNumbers(x)
	}
	return v
}

// yamlNumbers replaces every json.Number in v, in place, by the value
// go-yaml resolves the same plain scalar to.
func yamlNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch e.(type) {
			case map[string]any, []any, json.Number:
				x[k] = yamlNumbers(e)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = yamlNumbers(e)
		}
	case json.Number:
		return yamlNumber(string(x))
	}
	return v
}

func yamlNumber(s string) any {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		if i == int64(int(i)) {
			return int(i)
		}
		return i
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	return s
}
