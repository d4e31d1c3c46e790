package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// Identifiers in this file start with "na" (nil API).

type naIn struct {
	A pipeline.Ref[bdOut]
	L pipeline.Ref[[]bdOut]
	P pipeline.Ref[int]
}

func naUse() task.Task[naIn, bdOut] {
	return task.New("use", func(context.Context, naIn) (bdOut, error) { return bdOut{}, nil }).WithImage("registry.example/use:1")
}

func naValid() *pipeline.Pipeline {
	p := pipeline.New("valid", nil)
	pipeline.Add(p, bdTask(), bdIn{})
	return p
}

// TestNilAndZeroValuesPanicAtTheCallSite: builders given a nil pipeline
// or bind function, and the methods of a zero Step or Fan, panic with a
// message naming the misuse instead of dereferencing nil inside or
// dropping the setting.
func TestNilAndZeroValuesPanicAtTheCallSite(t *testing.T) {
	var nilP *pipeline.Pipeline
	p := pipeline.New("p", nil)
	s := pipeline.Add(p, bdTask(), bdIn{})
	items := pipeline.Const([]int{1})
	bind := func(pipeline.Ref[int]) bdIn { return bdIn{} }
	tests := []struct {
		name string
		call func()
		want string // in the panic message
	}{
		{"AddNilPipeline", func() { pipeline.Add(nilP, bdTask(), bdIn{}) }, "Add with a nil *Pipeline"},
		{"OnExitNilPipeline", func() { pipeline.OnExit(nilP, bdTask(), bdIn{}) }, "OnExit with a nil *Pipeline"},
		{"ForEachNilPipeline", func() { pipeline.ForEach(nilP, bdTask(), items, bind) }, "ForEach with a nil *Pipeline"},
		{"ForEachNilBind", func() { pipeline.ForEach[int](p, bdTask(), items, nil) }, "nil bind function"},
		{"FanOutNilPipeline", func() { pipeline.FanOut(nilP, bdTask(), []bdIn{{}}) }, "FanOut with a nil *Pipeline"},
		{"FanOutNilPipelineNoInputs", func() { pipeline.FanOut(nilP, bdTask(), nil) }, "FanOut with a nil *Pipeline"},
		{"NewParamNilPipeline", func() { pipeline.NewParam(nilP, "lr", 0.1) }, "NewParam with a nil *Pipeline"},
		{"StatusOfNilPipeline", func() { nilP.Status() }, "Pipeline.Status with a nil *Pipeline"},
		{"ZeroStepAfter", func() { pipeline.Step[bdOut]{}.After(s) }, "Step.After on a zero value"},
		{"ZeroStepWhen", func() { pipeline.Step[bdOut]{}.When(pipeline.Cond{}) }, "Step.When on a zero value"},
		{"ZeroFanLimit", func() { pipeline.Fan[bdOut]{}.Limit(2) }, "Fan.Limit on a zero value"},
		{"ZeroFanTolerate", func() { pipeline.Fan[bdOut]{}.Tolerate(1) }, "Fan.Tolerate on a zero value"},
		{"ZeroFanTolerateFraction", func() { pipeline.Fan[bdOut]{}.TolerateFraction(0.5) }, "Fan.TolerateFraction on a zero value"},
		{"ZeroFanAfter", func() { pipeline.Fan[bdOut]{}.After(s) }, "Fan.After on a zero value"},
		{"ZeroFanWhen", func() { pipeline.Fan[bdOut]{}.When(pipeline.Cond{}) }, "Fan.When on a zero value"},
		{"TaskNewNilFunc", func() { task.New[bdIn, bdOut]("t", nil) }, "nil Func"},
		{"FuncInvokerNilFunc", func() { task.FuncInvoker[bdIn, bdOut](nil) }, "nil Func"},
		{"WriteSummaryNilWriter", func() { pipeline.WriteSummary(nil, &backends.RunStatus{}) }, "WriteSummary with a nil writer"},
		{"WriteSummaryNilStatus", func() { pipeline.WriteSummary(io.Discard, nil) }, "WriteSummary with a nil run status"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "no panic")
				msg, ok := r.(string)
				require.True(t, ok, "panicked with %T %v, not a message (a nil dereference?)", r, r)
				assert.Contains(t, msg, tc.want)
			}()
			tc.call()
		})
	}
}

// TestNilArgumentsReturnErrMisuse: functions that return an error report
// a nil pipeline, backend, plan or writer as ErrMisuse.
func TestNilArgumentsReturnErrMisuse(t *testing.T) {
	ctx := context.Background()
	var nilP *pipeline.Pipeline
	var nilJob *kubejob.Backend
	var nilBuf *bytes.Buffer
	be := kubejob.New(nil, nil)
	plan, err := naValid().Plan(nil)
	require.NoError(t, err)
	tests := []struct {
		name string
		call func() error
	}{
		{"ValidateNilPipeline", func() error { return nilP.Validate() }},
		{"ValidateParamsNilPipeline", func() error { return nilP.ValidateParams(map[string]string{"a": "1"}) }},
		{"PlanNilPipeline", func() error { _, err := nilP.Plan(nil); return err }},
		{"CompileNilPipeline", func() error { _, err := pipeline.Compile(ctx, nilP, be, nil); return err }},
		{"CompileNilBackend", func() error { _, err := pipeline.Compile(ctx, naValid(), nil, nil); return err }},
		{"CompileTypedNilBackend", func() error { _, err := pipeline.Compile(ctx, naValid(), nilJob, nil); return err }},
		{"RunNilPipeline", func() error { _, err := pipeline.Run(ctx, nilP, be, nil); return err }},
		{"RunNilBackend", func() error { _, err := pipeline.Run(ctx, naValid(), nil, nil); return err }},
		{"RunTypedNilBackend", func() error { _, err := pipeline.Run(ctx, naValid(), nilJob, nil); return err }},
		{"WriteGraphNilWriter", func() error { return pipeline.WriteGraph(nil, plan, pipeline.Mermaid) }},
		{"WriteGraphTypedNilWriter", func() error { return pipeline.WriteGraph(nilBuf, plan, pipeline.DOT) }},
		{"WriteGraphNilPlan", func() error { return pipeline.WriteGraph(&bytes.Buffer{}, nil, pipeline.Mermaid) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = tc.call() })
			require.Error(t, err)
			assert.True(t, errors.Is(err, pipeline.ErrMisuse), "%v", err)
			assert.Empty(t, pipeline.FieldErrors(err), "misuse is not a field error")
		})
	}
}

// TestZeroValuesAreSafeGetters: getters of nil and zero values answer
// the zero value, as documented, and never dereference nil.
func TestZeroValuesAreSafeGetters(t *testing.T) {
	var nilP *pipeline.Pipeline
	assert.Equal(t, "", nilP.Name())
	assert.Equal(t, "", pipeline.Step[bdOut]{}.Name())
	assert.Equal(t, "", pipeline.Fan[bdOut]{}.Name())
	assert.Equal(t, "", pipeline.Param[int]{}.Name())
	assert.Equal(t, 0, pipeline.Param[int]{}.Default())
	assert.Equal(t, 0, pipeline.Ref[int]{}.Get())
}

// TestZeroValuesUsedAsDataAreReported: a zero Step, Fan or Param used as
// data (its Output, Collect or Ref), or a zero Task, is reported by
// Validate at the field that holds it, with its type.
func TestZeroValuesUsedAsDataAreReported(t *testing.T) {
	const use = "pipeline.tasks[use]."
	tests := []struct {
		name  string
		build func(p *pipeline.Pipeline)
		want  []bdKey
	}{
		{"ZeroStepOutput", func(p *pipeline.Pipeline) {
			pipeline.Add(p, naUse(), naIn{A: pipeline.Step[bdOut]{}.Output()})
		}, []bdKey{{use + "input.A", pipeline.ErrorTypeNotFound}}},
		{"ZeroFanCollect", func(p *pipeline.Pipeline) {
			pipeline.Add(p, naUse(), naIn{L: pipeline.Fan[bdOut]{}.Collect()})
		}, []bdKey{{use + "input.L", pipeline.ErrorTypeNotFound}}},
		{"CollectOfZeroSteps", func(p *pipeline.Pipeline) {
			pipeline.Add(p, naUse(), naIn{L: pipeline.Collect(pipeline.Step[bdOut]{}, pipeline.Step[bdOut]{})})
		}, []bdKey{{use + "input.L[0]", pipeline.ErrorTypeNotFound}, {use + "input.L[1]", pipeline.ErrorTypeNotFound}}},
		{"ZeroParamRef", func(p *pipeline.Pipeline) {
			pipeline.Add(p, naUse(), naIn{P: pipeline.Param[int]{}.Ref()})
		}, []bdKey{{use + "input.P", pipeline.ErrorTypeInvalid}}},
		{"ZeroParamInCondition", func(p *pipeline.Pipeline) {
			pipeline.Add(p, naUse(), naIn{}).When(pipeline.Eq(pipeline.Param[int]{}.Ref(), 1))
		}, []bdKey{{use + "when", pipeline.ErrorTypeInvalid}}},
		{"ZeroParamInCompare", func(p *pipeline.Pipeline) {
			lim := pipeline.NewParam(p, "lim", 1)
			pipeline.Add(p, naUse(), naIn{}).When(pipeline.Compare(lim.Ref(), "<", pipeline.Param[int]{}.Ref()))
		}, []bdKey{{use + "when", pipeline.ErrorTypeInvalid}}},
		{"ZeroParamAsFanOutItems", func(p *pipeline.Pipeline) {
			pipeline.ForEach(p, naUse(), pipeline.Param[[]int]{}.Ref(), func(pipeline.Ref[int]) naIn { return naIn{} })
		}, []bdKey{{use + "forEach.items", pipeline.ErrorTypeInvalid}}},
		{"ZeroStepAsDependency", func(p *pipeline.Pipeline) {
			pipeline.Add(p, naUse(), naIn{}).After(pipeline.Step[bdOut]{})
		}, []bdKey{{use + "after", pipeline.ErrorTypeNotFound}}},
		{"ZeroFanAsDependency", func(p *pipeline.Pipeline) {
			pipeline.Add(p, naUse(), naIn{}).After(pipeline.Fan[bdOut]{})
		}, []bdKey{{use + "after", pipeline.ErrorTypeNotFound}}},
		{"NilDependency", func(p *pipeline.Pipeline) {
			pipeline.Add(p, naUse(), naIn{}).After(nil)
		}, []bdKey{{use + "after", pipeline.ErrorTypeNotFound}}},
		{"ZeroTask", func(p *pipeline.Pipeline) {
			pipeline.Add(p, task.Task[naIn, bdOut]{}, naIn{})
		}, []bdKey{{"pipeline.tasks[0].name", pipeline.ErrorTypeRequired}, {"pipeline.tasks[0].kind", pipeline.ErrorTypeNotSupported}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New("zero", nil)
			require.NotPanics(t, func() { tc.build(p) })
			var err error
			require.NotPanics(t, func() { err = p.Validate() })
			assert.Equal(t, tc.want, bdKeys(err), "%v", err)
			_, cerr := pipeline.Compile(context.Background(), p, kubejob.New(nil, nil), nil)
			assert.Equal(t, tc.want, bdKeys(cerr))
		})
	}
}

var _ backends.Backend = (*kubejob.Backend)(nil)
