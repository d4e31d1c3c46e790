package artifact

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

var artifactType = reflect.TypeFor[Artifact]()

// Holds reports whether values of type t can hold an artifact: t is one,
// or a struct, pointer, slice, array or map that leads to one. For
// backend authors and the task package, which skip [Finish] for outputs
// that cannot hold one.
func Holds(t reflect.Type) bool {
	if v, ok := holdsCache.Load(t); ok {
		return v.(bool)
	}
	h := holds(t, map[reflect.Type]bool{})
	holdsCache.Store(t, h)
	return h
}

var holdsCache sync.Map // reflect.Type → bool

func holds(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t == nil {
		return false
	}
	if t == artifactType {
		return true
	}
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return holds(t.Elem(), seen)
	case reflect.Map:
		return t.Key().Kind() == reflect.String && holds(t.Elem(), seen)
	case reflect.Struct:
		for f := range t.Fields() {
			if f.IsExported() && holds(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

// Finish uploads the pending artifacts ([Local]) in *out, the output of
// the task that runs in ctx, each named after where it is in the output:
// its JSON field name ("model"), with nested fields, elements and map keys
// joined by '.' ("shards.0", "models.best"); "output" when the output is
// itself an artifact. It replaces each with the uploaded artifact. For
// backend authors: the Go task adapter calls it before it encodes a
// task's output.
func Finish(ctx context.Context, out any) error {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("artifact.Finish: want a non-nil pointer, got %T", out)
	}
	if !Holds(v.Type().Elem()) {
		return nil
	}
	return finish(ctx, v.Elem(), "")
}

func finish(ctx context.Context, v reflect.Value, name string) error {
	t := v.Type()
	if t == artifactType {
		a := v.Interface().(Artifact)
		if !a.Pending() {
			return nil
		}
		if name == "" {
			name = "output"
		}
		got, err := upload(ctx, name, a)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(got))
		return nil
	}
	if !Holds(t) {
		return nil
	}
	join := func(part string) string {
		if name == "" {
			return part
		}
		return name + "." + part
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return finish(ctx, v.Elem(), name)
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if err := finish(ctx, v.Index(i), join(strconv.Itoa(i))); err != nil {
				return err
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			e := reflect.New(t.Elem()).Elem()
			e.Set(iter.Value())
			if err := finish(ctx, e, join(iter.Key().String())); err != nil {
				return err
			}
			v.SetMapIndex(iter.Key(), e)
		}
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || !Holds(f.Type) {
				continue
			}
			part := jsonName(f)
			if part == "-" {
				continue
			}
			n := join(part)
			if f.Anonymous && f.Type == artifactType {
				n = name // the typed forms embed Artifact
			}
			if err := finish(ctx, v.Field(i), n); err != nil {
				return err
			}
		}
	}
	return nil
}

func jsonName(f reflect.StructField) string {
	tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if tag != "" {
		return tag
	}
	return f.Name
}
