package serve

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// This file generates the server's OpenAPI 3 document, GET
// /openapi.json, from the In and Out types by reflection.

// schema is an OpenAPI 3.0 schema object, the part of it this package
// writes.
type schema struct {
	Ref                  string             `json:"$ref,omitempty"`
	Type                 string             `json:"type,omitempty"`
	Format               string             `json:"format,omitempty"`
	Description          string             `json:"description,omitempty"`
	Nullable             bool               `json:"nullable,omitempty"`
	Minimum              *float64           `json:"minimum,omitempty"`
	Items                *schema            `json:"items,omitempty"`
	MinItems             *int               `json:"minItems,omitempty"`
	MaxItems             *int               `json:"maxItems,omitempty"`
	Properties           map[string]*schema `json:"properties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	AdditionalProperties *schema            `json:"additionalProperties,omitempty"`
	Example              any                `json:"example,omitempty"`
}

// schemas builds the schemas of Go types; named structs go to
// components once and are referred to by $ref.
type schemas struct {
	components map[string]*schema
	names      map[reflect.Type]string
}

func newSchemas() *schemas {
	return &schemas{components: map[string]*schema{}, names: map[reflect.Type]string{}}
}

// of returns the schema of t.
func (s *schemas) of(t reflect.Type) *schema {
	if t.Kind() == reflect.Pointer {
		sc := s.of(t.Elem())
		if sc.Ref != "" {
			return sc // a $ref takes no siblings in OpenAPI 3.0
		}
		c := *sc
		c.Nullable = true
		return &c
	}
	if opaque(t) {
		if t.String() == "time.Time" {
			return &schema{Type: "string", Format: "date-time"}
		}
		if t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
			return &schema{Type: "string"}
		}
		return &schema{Description: "JSON encoded by " + t.String() + "'s MarshalJSON"}
	}
	zero := 0.0
	switch t.Kind() {
	case reflect.Bool:
		return &schema{Type: "boolean"}
	case reflect.String:
		return &schema{Type: "string"}
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return &schema{Type: "integer", Format: "int32"}
	case reflect.Int, reflect.Int64:
		return &schema{Type: "integer", Format: "int64"}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return &schema{Type: "integer", Format: "int32", Minimum: &zero}
	case reflect.Uint, reflect.Uint64:
		return &schema{Type: "integer", Format: "int64", Minimum: &zero}
	case reflect.Float32:
		return &schema{Type: "number", Format: "float"}
	case reflect.Float64:
		return &schema{Type: "number", Format: "double"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return &schema{Type: "string", Format: "byte"}
		}
		return &schema{Type: "array", Items: s.of(t.Elem())}
	case reflect.Array:
		n := t.Len()
		return &schema{Type: "array", Items: s.of(t.Elem()), MinItems: &n, MaxItems: &n}
	case reflect.Map:
		return &schema{Type: "object", AdditionalProperties: s.of(t.Elem())}
	case reflect.Struct:
		return s.object(t)
	}
	return &schema{}
}

// object returns the schema of struct type t: a $ref to its component
// if it has a name, else the schema itself.
func (s *schemas) object(t reflect.Type) *schema {
	if t.Name() == "" {
		return s.properties(t)
	}
	if name, ok := s.names[t]; ok {
		return &schema{Ref: "#/components/schemas/" + name}
	}
	name := t.Name()
	for i := 2; s.components[name] != nil; i++ { // two types of one name in two packages
		name = fmt.Sprintf("%s%d", t.Name(), i)
	}
	s.names[t] = name
	s.components[name] = &schema{} // a recursive type refers to itself
	*s.components[name] = *s.properties(t)
	return &schema{Ref: "#/components/schemas/" + name}
}

func (s *schemas) properties(t reflect.Type) *schema {
	sc := &schema{Type: "object", Properties: map[string]*schema{}}
	for _, f := range jsonFields(t) {
		sc.Properties[f.name] = s.of(f.typ)
		if !f.omitEmpty {
			sc.Required = append(sc.Required, f.name)
		}
	}
	return sc
}

// openAPIDocument returns the server's OpenAPI 3.0 document, indented
// JSON; map keys are sorted by encoding/json, so it is deterministic.
func openAPIDocument(c core, m Model) ([]byte, error) {
	in, out := c.types()
	s := newSchemas()
	inSchema, outSchema := s.of(in), s.of(out)
	exampleRequest := map[string]any{"instances": []any{c.example()}}
	errorRef := &schema{Ref: "#/components/schemas/Error"}
	s.components["Error"] = &schema{Type: "object", Required: []string{"error"},
		Properties: map[string]*schema{"error": {Type: "string", Description: "What is wrong, naming the field or tensor, and how to fix it."}}}
	tensor := func(withData bool) *schema {
		sc := &schema{Type: "object", Required: []string{"name", "shape", "datatype"}, Properties: map[string]*schema{
			"name":     {Type: "string"},
			"shape":    {Type: "array", Items: &schema{Type: "integer", Format: "int64"}},
			"datatype": {Type: "string", Description: "BOOL, INT8…INT64, UINT8…UINT64, FP32, FP64 or BYTES"},
		}}
		if withData {
			sc.Required = append(sc.Required, "data")
			sc.Properties["data"] = &schema{Type: "array", Description: "The elements in row-major order, flat or nested.", Items: &schema{}}
		}
		return sc
	}
	s.components["InferenceRequest"] = &schema{Type: "object", Required: []string{"inputs"}, Properties: map[string]*schema{
		"id":      {Type: "string"},
		"inputs":  {Type: "array", Items: tensor(true)},
		"outputs": {Type: "array", Items: &schema{Type: "object", Properties: map[string]*schema{"name": {Type: "string"}}}},
	}}
	s.components["InferenceResponse"] = &schema{Type: "object", Required: []string{"model_name", "outputs"}, Properties: map[string]*schema{
		"model_name":    {Type: "string"},
		"model_version": {Type: "string"},
		"id":            {Type: "string"},
		"outputs":       {Type: "array", Items: tensor(true)},
	}}
	s.components["ModelMetadata"] = &schema{Type: "object", Required: []string{"name", "platform", "inputs", "outputs"}, Properties: map[string]*schema{
		"name":     {Type: "string"},
		"versions": {Type: "array", Items: &schema{Type: "string"}},
		"platform": {Type: "string"},
		"inputs":   {Type: "array", Items: tensor(false)},
		"outputs":  {Type: "array", Items: tensor(false)},
	}}
	s.components["Ready"] = &schema{Type: "object", Required: []string{"ready"}, Properties: map[string]*schema{
		"ready": {Type: "boolean"}, "error": {Type: "string"},
	}}

	name := c.name()
	jsonBody := func(sc *schema, example any) map[string]any {
		mt := map[string]any{"schema": sc}
		if example != nil {
			mt["example"] = example
		}
		return map[string]any{"application/json": mt}
	}
	resp := func(desc string, sc *schema) map[string]any {
		return map[string]any{"description": desc, "content": jsonBody(sc, nil)}
	}
	errs := func(codes ...string) map[string]any {
		words := map[string]string{
			"400": "The input is wrong; the error names the field or tensor.",
			"404": "No such model (or version) on this server.",
			"500": "The model failed (or panicked) on this input.",
			"503": "The model is not loaded yet, or the server is shutting down.",
		}
		out := map[string]any{}
		for _, c := range codes {
			out[c] = resp(words[c], errorRef)
		}
		return out
	}
	with := func(m map[string]any, code string, v any) map[string]any { m[code] = v; return m }
	ready := map[string]any{"200": resp("Ready.", &schema{Ref: "#/components/schemas/Ready"}),
		"503": resp("Not ready: loading, failed or draining.", &schema{Ref: "#/components/schemas/Ready"})}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       name + " model server",
			"version":     cmpOr(m.Version, "unversioned"),
			"description": strings.TrimSpace(c.description() + "\n\nServed by the Sluice Go predictor: KServe's v1 protocol, the Open Inference Protocol (v2) over REST, Prometheus metrics on /metrics and a try-it page on /."),
		},
		"paths": map[string]any{
			"/v1/models/" + name + ":predict": map[string]any{"post": map[string]any{
				"operationId": "predict",
				"summary":     "Predict: one output per input instance (KServe v1 protocol).",
				"requestBody": map[string]any{"required": true, "content": jsonBody(&schema{
					Type: "object", Required: []string{"instances"},
					Properties: map[string]*schema{"instances": {Type: "array", Items: inSchema}},
				}, exampleRequest)},
				"responses": with(errs("400", "404", "500", "503"), "200", resp("The predictions, in the order of the instances.", &schema{
					Type: "object", Required: []string{"predictions"},
					Properties: map[string]*schema{"predictions": {Type: "array", Items: outSchema}},
				})),
			}},
			"/v2/models/" + name + "/infer": map[string]any{"post": map[string]any{
				"operationId": "infer",
				"summary":     "Infer (Open Inference Protocol v2): one tensor per field of the input; a first dimension beyond the metadata's shape is a batch.",
				"requestBody": map[string]any{"required": true, "content": jsonBody(&schema{Ref: "#/components/schemas/InferenceRequest"}, nil)},
				"responses":   with(errs("400", "404", "500", "503"), "200", resp("The output tensors.", &schema{Ref: "#/components/schemas/InferenceResponse"})),
			}},
			"/v2/models/" + name: map[string]any{"get": map[string]any{
				"operationId": "modelMetadata",
				"summary":     "The model's metadata: its versions, platform and tensors.",
				"responses":   with(errs("404"), "200", resp("The metadata.", &schema{Ref: "#/components/schemas/ModelMetadata"})),
			}},
			"/v2/models/" + name + "/ready": map[string]any{"get": map[string]any{
				"operationId": "modelReady", "summary": "Whether the model is ready.", "responses": ready,
			}},
			"/v2/health/live": map[string]any{"get": map[string]any{
				"operationId": "live", "summary": "Whether the server is live.",
				"responses": map[string]any{"200": resp("Live.", &schema{Type: "object", Properties: map[string]*schema{"live": {Type: "boolean"}}})},
			}},
			"/v2/health/ready": map[string]any{"get": map[string]any{
				"operationId": "ready", "summary": "Whether the server is ready: the model is loaded and the server is not shutting down.", "responses": ready,
			}},
			"/v2": map[string]any{"get": map[string]any{
				"operationId": "serverMetadata", "summary": "The server's name, version and protocol extensions.",
				"responses": map[string]any{"200": resp("The server's metadata.", &schema{Type: "object", Properties: map[string]*schema{
					"name": {Type: "string"}, "version": {Type: "string"}, "extensions": {Type: "array", Items: &schema{Type: "string"}},
				}})},
			}},
			"/metrics": map[string]any{"get": map[string]any{
				"operationId": "metrics", "summary": "Prometheus metrics, in the text exposition format.",
				"responses": map[string]any{"200": map[string]any{"description": "The metrics.", "content": map[string]any{"text/plain": map[string]any{"schema": &schema{Type: "string"}}}}},
			}},
		},
		"components": map[string]any{"schemas": s.components},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("serve: predictor %s: the OpenAPI document: %w (is Example JSON-encodable?)", name, err)
	}
	return append(b, '\n'), nil
}
