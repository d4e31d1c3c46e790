package argo

import (
	"bytes"
	"encoding/json"
	"strconv"

	yamlv2 "go.yaml.in/yaml/v2"
)

// jsonToYAML returns what sigs.k8s.io/yaml.JSONToYAML returns for j, in
// about half the time: that function reads the JSON with go-yaml's YAML
// parser, the slow half of rendering a large workflow; this one decodes it
// with encoding/json and gives numbers the types go-yaml's resolver would
// (int, then uint64, then float64), so go-yaml's encoder writes the same
// bytes. TestJSONToYAMLMatchesSigsYAML holds it to that.
func jsonToYAML(j []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return yamlv2.Marshal(yamlNumbers(v))
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
		s := string(x)
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
	return v
}
