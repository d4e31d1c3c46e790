package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
)

// This file is KServe's v1 protocol, the typed JSON endpoint:
// POST /v1/models/{model}:predict with {"instances": [In, …]} answers
// {"predictions": [Out, …]}.

func (s *Server) v1Predict(w http.ResponseWriter, r *http.Request) error {
	name, ok := strings.CutSuffix(r.PathValue("model"), ":predict")
	if !ok {
		return &httpError{code: http.StatusNotFound, reason: "not_found", msg: fmt.Sprintf("no endpoint POST %s: the v1 endpoint is POST /v1/models/%s:predict", r.URL.Path, s.c.name())}
	}
	if name != s.c.name() {
		return &httpError{code: http.StatusNotFound, reason: "not_found", msg: fmt.Sprintf("no model %q: this server serves model %q", name, s.c.name())}
	}
	if he := s.canPredict(); he != nil {
		return he
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	resp, n, err := s.c.predictV1(r.Context(), body)
	if err != nil {
		return err
	}
	s.met.predictions.Add(float64(n))
	writeRaw(w, http.StatusOK, resp)
	return nil
}

// v1Ready answers GET /v1/models/{model}: {"name": …, "ready": …}, 503
// when not ready.
func (s *Server) v1Ready(w http.ResponseWriter, r *http.Request) error {
	if r.PathValue("model") != s.c.name() {
		return &httpError{code: http.StatusNotFound, reason: "not_found", msg: fmt.Sprintf("no model %q: this server serves model %q", r.PathValue("model"), s.c.name())}
	}
	code := http.StatusOK
	if s.notReady() != nil {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, struct {
		Name  string `json:"name"`
		Ready bool   `json:"ready"`
	}{s.c.name(), code == http.StatusOK})
	return nil
}

type v1Request struct {
	Instances []json.RawMessage `json:"instances"`
}

type v1Response[Out any] struct {
	Predictions []Out `json:"predictions"`
}

func (rn *runner[In, Out]) predictV1(ctx context.Context, body []byte) ([]byte, int, error) {
	var req v1Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, 0, badRequest("the request is not a v1 prediction request: %v; send {\"instances\": [%s]}", jsonMessage(err), rn.exampleJSON())
	}
	if req.Instances == nil {
		return nil, 0, badRequest("instances is required: send {\"instances\": [%s]}", rn.exampleJSON())
	}
	if len(req.Instances) == 0 {
		return nil, 0, badRequest("instances is empty: give at least one input")
	}
	resp := v1Response[Out]{Predictions: make([]Out, len(req.Instances))}
	for i, raw := range req.Instances {
		in, err := rn.decodeInstance(raw, fmt.Sprintf("instances[%d]", i))
		if err != nil {
			return nil, 0, err
		}
		if resp.Predictions[i], err = rn.predict(ctx, in); err != nil {
			if len(req.Instances) > 1 {
				var he *httpError
				if errors.As(err, &he) {
					he.msg = fmt.Sprintf("instances[%d]: %s", i, he.msg)
				}
			}
			return nil, 0, err
		}
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return nil, 0, &httpError{code: http.StatusInternalServerError, reason: "model", msg: fmt.Sprintf("model %s: encoding the predictions: %v", rn.p.Name, jsonMessage(err))}
	}
	return b, len(req.Instances), nil
}

// decodeInstance decodes one input, strictly: an unknown field or a
// missing required one (without omitempty) is an error naming it.
func (rn *runner[In, Out]) decodeInstance(raw json.RawMessage, at string) (In, error) {
	var in In
	if rn.inStruct && len(rn.required) > 0 {
		// raw is valid JSON: the request decoded.
		var seen [64]bool
		found := seen[:0]
		if len(rn.required) > len(seen) {
			found = make([]bool, 0, len(rn.required))
		}
		found = found[:len(rn.required)]
		if !topKeys(raw, func(k []byte) {
			for i, f := range rn.required {
				if string(k) == f {
					found[i] = true
				}
			}
		}) {
			return in, badRequest("%s: want a JSON object with the fields %s, got %s", at, fieldList(rn.fieldNames()), jsonValueKind(raw))
		}
		for i, f := range rn.required {
			if !found[i] {
				return in, badRequest("%s.%s is required", at, f)
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			where := at
			if te.Field != "" {
				where += "." + te.Field
			}
			return in, badRequest("%s: want %s, got JSON %s", where, typeWords(te.Type), te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return in, badRequest("%s.%s is not a field of the input; its fields: %s", at, f, fieldList(rn.fieldNames()))
		default:
			return in, badRequest("%s: %v", at, jsonMessage(err))
		}
	}
	return in, nil
}

// fieldNames are the JSON names of In's fields.
func (rn *runner[In, Out]) fieldNames() []string {
	var out []string
	for _, p := range rn.in {
		out = append(out, p.name)
	}
	return out
}

// exampleJSON is the predictor's example input as JSON, for messages.
func (rn *runner[In, Out]) exampleJSON() string {
	b, err := json.Marshal(rn.p.Example)
	if err != nil {
		return "…"
	}
	return string(b)
}

// typeWords names a Go type as a JSON value, for messages.
func typeWords(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer (" + t.String() + ")"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer ≥ 0 (" + t.String() + ")"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.String()
}

// jsonValueKind names the kind of a JSON value, for messages.
func jsonValueKind(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "":
		return "nothing"
	case s[0] == '[':
		return "an array"
	case s[0] == '"':
		return "a string"
	case s == "null":
		return "null"
	case s == "true" || s == "false":
		return s
	}
	return "a number"
}
