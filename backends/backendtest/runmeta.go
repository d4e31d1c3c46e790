package backendtest

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// RunMetadataName is the name of the pipeline [RunMetadata] builds.
const RunMetadataName = "RunMetadata"

// metaIn reads every fact about the run.
type metaIn struct {
	ID        pipeline.Ref[string]
	Started   pipeline.Ref[time.Time]
	Scheduled pipeline.Ref[time.Time]
}

// metaOut is what a task got: the id, and each time as RFC 3339 with its
// offset and any fraction, to show the form it came in.
type metaOut struct {
	ID        string
	Started   string
	Scheduled string
}

var readMeta = task.New("meta", func(_ context.Context, in metaIn) (metaOut, error) {
	return metaOut{in.ID.Get(), in.Started.Get().Format(time.RFC3339Nano), in.Scheduled.Get().Format(time.RFC3339Nano)}, nil
})

type idIn struct{ ID pipeline.Ref[string] }

var echoID = task.New("echo-id", func(_ context.Context, in idIn) (string, error) { return in.ID.Get(), nil })

// RunMetadata is a pipeline that reads the run's facts: step "meta" in its
// input, step "gated" in its condition (which holds on every run) and the
// exit handler "report".
func RunMetadata() *pipeline.Pipeline {
	p := pipeline.New("run-metadata", nil)
	pipeline.Add(p, readMeta, metaIn{ID: pipeline.RunID(), Started: pipeline.RunStarted(), Scheduled: pipeline.RunScheduled()})
	pipeline.Add(p, echoID.WithName("gated"), idIn{ID: pipeline.RunID()}).
		When(pipeline.And(pipeline.Ne(pipeline.RunID(), ""), pipeline.Ne(pipeline.RunScheduled(), time.Time{})))
	pipeline.OnExit(p, echoID.WithName("report"), idIn{ID: pipeline.RunID()})
	return p
}

// metaTime is the form of the run's times on every backend.
var metaTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// CheckRunMetadata runs [RunMetadata] on b twice and checks what its
// tasks got: the run id the run reports, the start in RFC 3339 UTC to the
// second, no later than the run's reported start, and as the scheduled
// time; then, for a run submitted with a scheduled time, that time.
func CheckRunMetadata(t *testing.T, b backends.Backend) {
	t.Helper()
	st := mustSucceed(t, b, RunMetadata(), nil)
	got := output[metaOut](t, st, "meta")
	assert.Equal(t, st.RunID, got.ID, "the id the run reports")
	assert.Regexp(t, metaTime, got.Started)
	assert.Equal(t, got.Started, got.Scheduled, "a run no scheduler started is scheduled when it starts")
	started, err := time.Parse(time.RFC3339, got.Started)
	require.NoError(t, err)
	require.False(t, st.Started.IsZero(), "the run reports its start")
	assert.False(t, started.After(st.Started), "the run was created (%s) no later than it reports it started (%s)", started, st.Started)
	assert.Equal(t, backends.PhaseSucceeded, step(t, st, "gated").Phase, "the condition saw the run's facts")
	assert.Equal(t, st.RunID, output[string](t, st, "gated"))
	assert.Equal(t, st.RunID, output[string](t, st, "report"), "the exit handler reads the run id")

	at := time.Date(2026, 11, 30, 23, 0, 0, 0, time.FixedZone("UTC-1", -3600))
	st, err = pipeline.Run(t.Context(), RunMetadata(), b, &pipeline.RunOptions{Scheduled: at})
	require.NoError(t, err, "run failed: %s", summary(st))
	got = output[metaOut](t, st, "meta")
	assert.Equal(t, "2026-12-01T00:00:00Z", got.Scheduled, "the scheduled time given, in UTC")
	assert.Regexp(t, metaTime, got.Started)
	assert.NotEqual(t, got.Started, got.Scheduled)
}

func testRunMetadata(t *testing.T, b backends.Backend, _ Capabilities) { CheckRunMetadata(t, b) }
