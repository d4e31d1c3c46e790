package kubepod

import (
	"bytes"
	"encoding/json"
	"strconv"

	yamlv2 "go.yaml.in/yaml/v2"
)

// This file keeps the implementation of Render that the emitter of
// render.go replaced, as the oracle of its tests: json.Marshal, a decode
// into a map tree, the pruning, and go-yaml's Marshal.

// OracleRender is the former Render, for the tests of package
// kubepod_test.
var OracleRender = oracleRender

func oracleRender(obj any) ([]byte, error) {
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
	return yamlv2.Marshal(oraclePrune(v))
}

// oracleEmptyObjects are the keys whose empty object Render leaves out.
var oracleEmptyObjects = map[string]bool{"resources": true, "metadata": true, "inputs": true, "outputs": true, "arguments": true}

// oracleStringMaps are the keys of user-written string maps, which Render
// writes as they are (a label "name" may be empty).
var oracleStringMaps = map[string]bool{"labels": true, "annotations": true, "nodeSelector": true, "matchLabels": true, "data": true}

// oraclePrune removes, in place, what Render leaves out below the top
// level and gives numbers their YAML types (see yamlNumbers); it returns v.
func oraclePrune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil || (k == "name" && e == "") {
				delete(x, k)
				continue
			}
			if oracleStringMaps[k] {
				continue
			}
			x[k] = oraclePrune(e)
			if m, ok := x[k].(map[string]any); ok && len(m) == 0 && oracleEmptyObjects[k] {
				delete(x, k)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = oraclePrune(e)
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
