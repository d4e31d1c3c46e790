package serve

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// This file is the try-it page, GET /: a form generated from In that
// posts one instance to the v1 endpoint and shows the prediction.

//go:embed static
var staticFS embed.FS

var tryItTemplate = template.Must(template.ParseFS(staticFS, "static/tryit.html.tmpl"))

// formField is one control of the try-it form.
type formField struct {
	ID, Name, Label string
	// Kind tells the page's script how to read the control: boolean,
	// integer, number, numbers, integers, text or json.
	Kind      string
	InputType string // the <input> type
	Step      string
	Value     string
	Checked   bool
	Required  bool
	Optional  bool // an empty control leaves the field out
	Hint      string
}

type tryItData struct {
	Name, Description, Version string
	Record                     bool
	Fields                     []formField
}

// tryItPage renders the try-it page of c.
func tryItPage(c core, m Model) ([]byte, error) {
	in, _ := c.types()
	ex := reflect.ValueOf(c.example())
	data := tryItData{Name: c.name(), Description: c.description(), Version: cmpOr(m.Version, "unversioned")}
	if isRecord(in) {
		data.Record = true
		for i, f := range jsonFields(in) {
			v := ex.FieldByIndex(f.index)
			data.Fields = append(data.Fields, formFieldOf(fmt.Sprintf("f%d-%s", i, f.name), f.name, f.typ, v, !f.omitEmpty))
		}
	} else {
		data.Fields = []formField{formFieldOf("f0-input", "input", in, ex, true)}
	}
	var b bytes.Buffer
	if err := tryItTemplate.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("serve: predictor %s: the try-it page: %w", c.name(), err)
	}
	return b.Bytes(), nil
}

// formFieldOf returns the control of a field of type t whose example
// value is v.
func formFieldOf(id, name string, t reflect.Type, v reflect.Value, required bool) formField {
	f := formField{ID: id, Name: name, Label: name, Required: required, Optional: !required}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
		f.Optional = true
		if v.IsNil() {
			v = reflect.Value{}
		} else {
			v = v.Elem()
		}
	}
	jsonValue := func() string {
		if !v.IsValid() {
			return ""
		}
		switch v.Kind() {
		case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface:
			if v.IsNil() {
				return "" // an empty control: null, or left out if optional
			}
		}
		b, err := json.Marshal(v.Interface())
		if err != nil {
			return ""
		}
		return string(b)
	}
	p := planTensor(name, nil, t, false)
	switch {
	case p.asJSON:
		f.Kind, f.Value = "json", jsonValue()
		f.Hint = "JSON"
		if isRecord(t) {
			f.Hint = "JSON: an object with the fields " + fieldList(jsonNames(t))
		}
	case p.dims == nil && t.Kind() == reflect.Bool:
		f.Kind, f.InputType = "boolean", "checkbox"
		f.Checked = v.IsValid() && v.Bool()
	case p.dims == nil && t.Kind() == reflect.String:
		f.Kind, f.InputType = "text", "text"
		if v.IsValid() {
			f.Value = v.String()
		}
	case p.dims == nil && (t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64):
		f.Kind, f.InputType, f.Step, f.Value = "number", "number", "any", jsonValue()
	case p.dims == nil:
		f.Kind, f.InputType, f.Step, f.Value = "integer", "number", "1", jsonValue()
	case len(p.dims) == 1 && p.datatype != "BYTES" && p.datatype != "BOOL":
		f.Kind, f.InputType = "numbers", "text"
		if k := p.elem.Kind(); k != reflect.Float32 && k != reflect.Float64 {
			f.Kind = "integers"
		}
		if v.IsValid() {
			var parts []string
			for i := range v.Len() {
				b, _ := json.Marshal(v.Index(i).Interface())
				parts = append(parts, string(b))
			}
			f.Value = strings.Join(parts, ", ")
		}
		f.Hint = "Numbers separated by commas"
		if p.dims[0] >= 0 {
			f.Hint += ", " + strconv.Itoa(p.dims[0]) + " of them"
		}
	default:
		f.Kind, f.Value, f.Hint = "json", jsonValue(), "JSON"
	}
	return f
}

func jsonNames(t reflect.Type) []string {
	var out []string
	for _, f := range jsonFields(t) {
		out = append(out, f.name)
	}
	return out
}

// static serves the page's script and style sheet.
func (s *Server) static(w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimPrefix(r.URL.Path, "/static/")
	if name != "tryit.js" && name != "tryit.css" {
		return &httpError{code: http.StatusNotFound, reason: "not_found", msg: fmt.Sprintf("no file %s", r.URL.Path)}
	}
	b, err := fs.ReadFile(staticFS, "static/"+name)
	if err != nil {
		return err
	}
	ct := "text/css; charset=utf-8"
	if strings.HasSuffix(name, ".js") {
		ct = "text/javascript; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Write(b)
	return nil
}
