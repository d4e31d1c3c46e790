package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/pipeline/pipelinetest"
	"github.com/sluice-ml/sluice/task"
)

// partitionIn is a daily job's input: which day's data, for which run.
type partitionIn struct {
	Day     pipeline.Ref[time.Time]
	Started pipeline.Ref[time.Time]
	Run     pipeline.Ref[string]
}

var partition = task.New("partition", func(_ context.Context, in partitionIn) (string, error) {
	return fmt.Sprintf("dt=%s/run=%s/started=%s", in.Day.Get().Format("2006-01-02"), in.Run.Get(), in.Started.Get().Format(time.RFC3339)), nil
})

type noteIn struct{ Run pipeline.Ref[string] }

var note = task.New("note", func(_ context.Context, in noteIn) (string, error) { return "ended " + in.Run.Get(), nil })

// daily names its partition from the run; "midnight" runs only for a run
// scheduled at 2026-12-01 00:00 UTC (written in another zone); the exit
// handler reads the run id.
func daily() (*pipeline.Pipeline, pipeline.Step[string], pipeline.Step[string], pipeline.Step[string]) {
	p := pipeline.New("daily", nil)
	part := pipeline.Add(p, partition, partitionIn{Day: pipeline.RunScheduled(), Started: pipeline.RunStarted(), Run: pipeline.RunID()})
	cet := time.FixedZone("CET", 3600)
	midnight := pipeline.Add(p, note.WithName("midnight"), noteIn{Run: pipeline.RunID()}).
		When(pipeline.Eq(pipeline.RunScheduled(), time.Date(2026, 12, 1, 1, 0, 0, 0, cet)))
	exit := pipeline.OnExit(p, note.WithName("report"), noteIn{Run: pipeline.RunID()})
	return p, part, midnight, exit
}

// A test fixes the run's id, start and scheduled time, so the partition a
// run names is checked exactly; the times are in UTC whatever zone they
// were given in, and to the second.
func TestRunMetadataFixedInTests(t *testing.T) {
	p, part, midnight, exit := daily()
	env := pipelinetest.NewEnv(t)
	cet := time.FixedZone("CET", 3600)
	res := env.RunWith(p, pipelinetest.RunOptions{
		RunID:     "daily-20261201",
		Start:     time.Date(2026, 12, 1, 1, 0, 7, 500e6, cet),
		Scheduled: time.Date(2026, 12, 1, 1, 0, 0, 0, cet),
	})
	require.NoError(t, res.Err())
	assert.Equal(t, "daily-20261201", res.Status.RunID)
	assert.Equal(t, "dt=2026-12-01/run=daily-20261201/started=2026-12-01T00:00:07Z", pipelinetest.Output(res, part))
	assert.Equal(t, "ended daily-20261201", pipelinetest.Output(res, midnight))
	assert.Equal(t, "ended daily-20261201", pipelinetest.Output(res, exit))

	// Without options: the Env's run ids and clock; scheduled is the
	// start, so the condition does not hold.
	p, part, midnight, _ = daily()
	res = pipelinetest.NewEnv(t).Run(p)
	require.NoError(t, res.Err())
	assert.Equal(t, "dt=2026-01-01/run=daily-1/started=2026-01-01T00:00:00Z", pipelinetest.Output(res, part))
	assert.True(t, res.Skipped(midnight))
	assert.Contains(t, res.Step(midnight).Message, `runScheduled == "2026-12-01T00:00:00Z"`)
}

// On the local backend the facts come from the run itself: its id, its
// start on the backend's clock, and SubmitOptions.Scheduled.
func TestRunMetadataLocal(t *testing.T) {
	clk := pipelinetest.NewClock(time.Date(2026, 12, 1, 6, 0, 3, 0, time.UTC))
	b := local.New(&local.Options{Clock: clk})
	p, part, _, _ := daily()
	st, err := pipeline.Run(t.Context(), p, b, &pipeline.RunOptions{RunID: "r1"})
	require.NoError(t, err)
	assert.JSONEq(t, `"dt=2026-12-01/run=r1/started=2026-12-01T06:00:03Z"`, string(st.Step(part.Name()).Output))

	p, part, midnight, _ := daily()
	st, err = pipeline.Run(t.Context(), p, b, &pipeline.RunOptions{RunID: "backfill", Scheduled: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	assert.JSONEq(t, `"dt=2026-12-01/run=backfill/started=2026-12-01T06:00:03Z"`, string(st.Step(part.Name()).Output))
	assert.Equal(t, backends.PhaseSucceeded, st.Step(midnight.Name()).Phase)
}

// The run's facts lower to RefMeta refs, written runID, runStarted and
// runScheduled; a dry run cannot know them, so a condition on them is
// left to the run.
func TestRunMetadataPlan(t *testing.T) {
	p, _, _, _ := daily()
	plan, err := p.Plan(nil)
	require.NoError(t, err)
	in := plan.Steps[0].Input
	require.Len(t, in.Refs, 3)
	assert.Equal(t, backends.Ref{Kind: backends.RefMeta, Meta: backends.MetaRunScheduled}, in.Refs[0])
	assert.Equal(t, []string{"runScheduled", "runStarted", "runID"}, []string{in.Refs[0].String(), in.Refs[1].String(), in.Refs[2].String()})
	assert.Equal(t, `runScheduled == "2026-12-01T00:00:00Z"`, plan.Steps[1].When.String())

	st, err := pipeline.Run(t.Context(), p, local.New(&local.Options{DryRun: true}), nil)
	require.NoError(t, err)
	assert.Contains(t, st.Step("midnight").Message, "condition runScheduled == \"2026-12-01T00:00:00Z\" depends on run-time values")
}

// A run's fact has no fields to project: Field on one is a Validate error
// that names the field.
func TestRunMetadataHasNoFields(t *testing.T) {
	p := pipeline.New("bad", nil)
	pipeline.ForEach(p, note, pipeline.Field[[]string](pipeline.RunID(), "X"), func(r pipeline.Ref[string]) noteIn { return noteIn{Run: r} })
	_, err := p.Plan(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Field(\"X\"): string has no exported field of that name")
}

// "run -scheduled" backfills: the run's steps get the time given, a date
// meaning its midnight UTC; anything else is a usage error naming the
// flag and the forms it takes.
func TestRunScheduledFlag(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"2026-11-30", "dt=2026-11-30/"},
		{"2026-11-30T23:30:00-02:00", "dt=2026-12-01/"},
	} {
		p, _, _, _ := daily()
		report := t.TempDir() + "/report.json"
		var out, errb strings.Builder
		code := pipeline.Exec(t.Context(), p, []string{"run", "-q", "-no-cache", "-scheduled", tc.arg, "-report", report}, &out, &errb, local.New(nil))
		require.Equal(t, pipeline.ExitOK, code, errb.String())
		b, err := os.ReadFile(report)
		require.NoError(t, err)
		var st backends.RunStatus
		require.NoError(t, json.Unmarshal(b, &st))
		var got string
		require.NoError(t, json.Unmarshal(st.Step("partition").Output, &got))
		assert.True(t, strings.HasPrefix(got, tc.want), "%s: %s", tc.arg, got)
	}
	p, _, _, _ := daily()
	var out, errb strings.Builder
	code := pipeline.Exec(t.Context(), p, []string{"run", "-scheduled", "yesterday"}, &out, &errb, local.New(nil))
	assert.Equal(t, pipeline.ExitInvalid, code)
	assert.Contains(t, errb.String(), `invalid value "yesterday" for flag -scheduled: not a time: give RFC 3339 (2026-12-01T06:00:00Z) or a date (2026-12-01, midnight UTC)`)
}

// argsRunner records a container's arguments and writes no output.
type argsRunner struct{ args *[]string }

func (r argsRunner) Run(_ context.Context, c local.Container) (map[string][]byte, error) {
	*r.args = c.Args
	return map[string][]byte{}, nil
}

// A container task's {{.Field}} placeholder gets a run's fact as text:
// the id, and a time in RFC 3339 UTC.
func TestRunMetadataContainerPlaceholders(t *testing.T) {
	type in struct {
		Day pipeline.Ref[time.Time]
		Run pipeline.Ref[string]
	}
	p := pipeline.New("ctr", nil)
	pipeline.Add(p, task.Container[in, struct{}]("export", "registry.example/export:1").
		WithCommand("/export").WithArgs("--day={{.Day}}", "--run={{.Run}}"), in{Day: pipeline.RunScheduled(), Run: pipeline.RunID()})
	var args []string
	b := local.New(&local.Options{Runner: argsRunner{&args}, Clock: pipelinetest.NewClock(time.Date(2026, 12, 1, 6, 0, 3, 0, time.UTC))})
	_, err := pipeline.Run(t.Context(), p, b, &pipeline.RunOptions{RunID: "r7", Scheduled: time.Date(2026, 12, 1, 6, 0, 0, 0, time.FixedZone("", 3600))})
	require.NoError(t, err)
	assert.Equal(t, []string{"--day=2026-12-01T05:00:00Z", "--run=r7"}, args)
}
