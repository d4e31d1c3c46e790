// Package scribble helps tests prove that compiled objects share no memory
// with the Plan they were compiled from: scribble over an object with
// [Over], then compare the Plan's [Fingerprint] taken before with the one
// taken after; [Hook] does both in a BeforeEmit hook.
package scribble

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/sluice-ml/sluice/backends"
)

// Over changes, in place, every value reachable from v (a pointer) that
// can be set: strings, numbers, booleans, quantities, map entries and
// slice elements, through pointers and exported struct fields. Memory v
// shares with anything else changes there too.
func Over(v any) { over(reflect.ValueOf(v)) }

func over(v reflect.Value) {
	if v.CanAddr() {
		if q, ok := v.Addr().Interface().(*resource.Quantity); ok {
			q.Add(resource.MustParse("1"))
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			over(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				over(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			over(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			over(e)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(v.String() + "!")
		}
	case reflect.Bool:
		if v.CanSet() {
			v.SetBool(!v.Bool())
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.CanSet() {
			v.SetInt(v.Int() + 1)
		}
	}
}

// Fingerprint returns the JSON of the data in p that objects are built
// from: each step's task (but its Go types and functions), input, resolved
// resources and placement, and cache policy.
func Fingerprint(p *backends.Plan) string {
	type step struct {
		Name     string
		Task     any
		Resolved any
		Input    any
		Cache    any
		When     any
		ForEach  any
	}
	var steps []step
	all := p.Steps
	if p.Exit != nil {
		all = append(all[:len(all):len(all)], *p.Exit)
	}
	for _, s := range all {
		t := s.Task
		t.InputType, t.OutputType = nil, nil
		steps = append(steps, step{s.Name, t, s.Resolved, s.Input, s.Cache, s.When, s.ForEach})
	}
	b, err := json.Marshal(struct {
		Name   string
		Params any
		Steps  []step
	}{p.Name, p.Params, steps})
	if err != nil {
		panic(fmt.Sprintf("scribble: %v", err))
	}
	return string(b)
}

// Hook returns a BeforeEmit hook (backends.CompileOptions.BeforeEmit) that
// takes the Plan and the backend's object into target, a pointer as As
// wants it, scribbles over the object and fails t if the Plan changed. It
// fails t too if the hook never ran.
func Hook(t testing.TB, target any) func(as func(any) bool) error {
	t.Helper()
	ran := false
	t.Cleanup(func() {
		if !ran {
			t.Errorf("the BeforeEmit hook never ran")
		}
	})
	return func(as func(any) bool) error {
		ran = true
		var p *backends.Plan
		if !as(&p) || !as(target) {
			t.Errorf("As gave no Plan or no %T", target)
			return nil
		}
		before := Fingerprint(p)
		Over(target)
		if after := Fingerprint(p); after != before {
			t.Errorf("scribbling over the emitted %T changed the Plan:\nbefore: %s\nafter:  %s", target, before, after)
		}
		return nil
	}
}
