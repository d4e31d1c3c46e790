package task_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

type wIn struct {
	ID int
	In int
}

func TestWrap(t *testing.T) {
	double := task.New("double", func(ctx context.Context, x int) (int, error) { return 2 * x, nil }).
		WithResources(resources.Profile{CPU: "2"}).WithRetry(task.Retry{App: 2}).WithTimeout(time.Minute).
		WithCache(task.Cache{Enabled: true, Version: "1", ExcludeInputs: []string{"x"}})
	around := func(ctx context.Context, in wIn, run task.Func[int, int]) (string, error) {
		out, err := run(ctx, in.In)
		return fmt.Sprintf("%d:%d", in.ID, out), err
	}
	w := task.Wrap("tagged", double, around)

	s := w.Spec()
	assert.Equal(t, "tagged", s.Name)
	assert.Equal(t, task.KindGo, s.Kind)
	assert.Equal(t, "2", s.Resources.CPU)
	assert.Equal(t, &task.Retry{App: 2}, s.Retry)
	assert.Equal(t, time.Minute, s.Timeout)
	assert.Equal(t, task.Cache{Enabled: true, Version: "1"}, s.Cache, "ExcludeInputs name the wrapped task's input")
	assert.Equal(t, reflect.TypeFor[wIn](), s.InputType)
	assert.Equal(t, reflect.TypeFor[string](), s.OutputType)

	out, err := w.Invoker().Invoke(context.Background(), []byte(`{"ID":7,"In":5}`))
	require.NoError(t, err)
	assert.JSONEq(t, `"7:10"`, string(out))
	got, err := w.Func()(context.Background(), wIn{ID: 1, In: 2})
	require.NoError(t, err)
	assert.Equal(t, "1:4", got)

	wr, ok := w.Invoker().(task.Wrapper)
	require.True(t, ok)
	assert.Equal(t, "double", wr.Wrapped())
	triple := task.FuncInvoker(func(ctx context.Context, x int) (int, error) { return 3 * x, nil })
	out, err = wr.Rewrap(triple).Invoke(context.Background(), []byte(`{"ID":7,"In":5}`))
	require.NoError(t, err)
	assert.JSONEq(t, `"7:15"`, string(out), "the replacement runs inside the wrapper")
	out, err = wr.Invoke(context.Background(), []byte(`{"ID":7,"In":5}`))
	require.NoError(t, err)
	assert.JSONEq(t, `"7:10"`, string(out), "Rewrap returns a copy")
}

func TestWrapMisusePanics(t *testing.T) {
	around := func(ctx context.Context, in int, run task.Func[int, int]) (int, error) { return run(ctx, in) }
	assert.Panics(t, func() { task.Wrap("w", task.Container[int, int]("c", "img:1"), around) })
	assert.Panics(t, func() {
		task.Wrap[int, int, int, int]("w", task.New("t", func(ctx context.Context, x int) (int, error) { return x, nil }), nil)
	})
}
