package argo

import (
	"encoding/json"

	"github.com/sluice-ml/sluice/backends"
)

// Workflow parameters: a parameter whose values are strings
// (backends.Param.Text) is stored as its text, without JSON quotes, so
// that it reads "bar" in Argo's UI and a user who edits it there or passes
// "-p name=bar" to argo submit gives the string bar; every other
// parameter is stored as JSON. Every ref to a text parameter encodes it
// (toJson) where the compiled workflow needs JSON.

// rawParam reports whether the workflow parameter name holds text.
func (c *compiler) rawParam(name string) bool {
	for _, p := range c.plan.Params {
		if p.Name == name {
			return p.Text
		}
	}
	return false
}

// argument is the value of plan parameter p in spec.arguments: its text,
// or its JSON.
func argument(p backends.Param) string {
	if p.Text {
		var s string
		if json.Unmarshal(p.Value, &s) == nil {
			return s
		}
	}
	return compactJSON(p.Value)
}

// paramExpr is the expression of the JSON text of parameter name.
func (c *compiler) paramExpr(name string) string {
	e := member("workflow.parameters", name)
	if c.rawParam(name) {
		return "toJson(" + e + ")"
	}
	return e
}
