package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-ml/sluice/artifact"
	_ "github.com/sluice-ml/sluice/artifact/stores"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/e2e/internal/pipelines"
	"github.com/sluice-ml/sluice/internal/s3test"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// rootURL is the artifact root of prefix in bucket on srv: the bucket's
// URL with the prefix as its path.
func rootURL(srv *s3test.Server, bucket, prefix string) string {
	u := srv.BucketURL(bucket)
	base, q, _ := strings.Cut(u, "?")
	return base + "/" + prefix + "?" + q
}

// TestS3Artifacts writes and reads artifacts through the SDK on a real S3
// server (versitygw), and checks the errors users meet: a damaged object,
// a missing bucket, wrong credentials.
func TestS3Artifacts(t *testing.T) {
	srv := s3test.StartT(t)
	srv.Setenv(t)
	ctx := t.Context()
	require.NoError(t, srv.CreateBucket(ctx, "models"))
	root := rootURL(srv, "models", "team/a")

	s, err := artifact.Open(ctx, root)
	require.NoError(t, err)
	defer s.Close()
	i := 2
	tctx := artifact.NewContext(ctx, artifact.Scope{Store: s, Dir: t.TempDir(),
		Producer: artifact.Producer{Pipeline: "qs", Run: "qs-1", Step: "train", Instance: &i}})

	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB: a multipart upload
	m, err := artifact.Write[artifact.Model](tctx, "model", func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, artifact.Meta("framework", "go"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(m.URI, "s3://models/team/a/qs/qs-1/train/2/model?"), m.URI)
	assert.NotContains(t, m.URI, srv.SecretKey)
	assert.NotContains(t, m.URI, srv.AccessKey)

	got, err := m.ReadAll(tctx)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got))

	objs, err := s.List(ctx, "qs", "qs-1")
	require.NoError(t, err)
	require.Len(t, objs, 1)
	assert.Equal(t, "qs/qs-1/train/2/model", objs[0].Key)
	assert.Equal(t, int64(len(data)), objs[0].Size)

	// Damaged behind the SDK's back: the read says so.
	_, err = srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("team/a/qs/qs-1/train/2/model"), Body: bytes.NewReader(data[:100])})
	require.NoError(t, err)
	_, err = m.ReadAll(tctx)
	require.ErrorIs(t, err, artifact.ErrCorrupt)

	runs, err := s.Runs(ctx, "qs")
	require.NoError(t, err)
	assert.Equal(t, []string{"qs-1"}, runs)

	// A new process's local run picks an id the bucket has not seen.
	p := pipeline.New("qs", nil)
	pipeline.Add(p, task.New("train", func(ctx context.Context, _ struct{}) (artifact.File, error) {
		return artifact.WriteJSON[artifact.File](ctx, "f", 1)
	}), struct{}{})
	st, err := pipeline.Run(ctx, p, local.New(nil), &pipeline.RunOptions{Artifacts: root})
	require.NoError(t, err)
	assert.Equal(t, "qs-2", st.RunID, "qs-1 is in the bucket already")

	n, err := s.Delete(ctx, "qs", "qs-1")
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	_, err = artifact.Open(ctx, rootURL(srv, "no-such-bucket", "x"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the bucket does not exist")

	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	_, err = artifact.Open(ctx, root)
	require.Error(t, err, "wrong credentials fail before a run starts")
	assert.Contains(t, err.Error(), "cannot reach the bucket")
	assert.Contains(t, err.Error(), "access denied: check the credentials")
	t.Logf("wrong credentials: %v", err)
}

// quickstartSecret is the Secret the quickstart's pods take the store's
// credentials from (QUICKSTART_ARTIFACT_SECRET).
const quickstartSecret = "quickstart-artifacts"

// quickstartStore starts an S3 server for t, with a bucket, and returns
// the artifact root the quickstart runs with. The credentials go into
// the environment of the programs t starts (the local run and the
// orchestrators) and into a Secret of each namespace in nss, for the
// pods.
func quickstartStore(t *testing.T, nss ...string) string {
	t.Helper()
	srv := s3test.StartT(t)
	srv.Setenv(t)
	t.Setenv("QUICKSTART_ARTIFACT_SECRET", quickstartSecret)
	require.NoError(t, srv.CreateBucket(t.Context(), "quickstart"))
	for _, ns := range nss {
		secretFromEnv(t, ns, quickstartSecret, srv.Env())
	}
	return rootURL(srv, "quickstart", "runs")
}

// secretFromEnv creates Secret name in ns holding env (NAME=value).
func secretFromEnv(t *testing.T, ns, name string, env []string) {
	t.Helper()
	data := map[string][]byte{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		data[k] = []byte(v)
	}
	_, err := cl.Client.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// TestBigValues runs a pipeline whose outputs are far over the in-band
// limits (a 550 KB list, a fan-out over 40 KB of strings) on each cluster
// backend with an S3 store: the large parts travel out of band, refs to
// small fields and the fan-out still work, the results are the local
// run's, the promoted values are gone once the run ends, and the final
// status holds the outputs they stood for whole.
func TestBigValues(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	srv := s3test.StartT(t)
	srv.Setenv(t)
	require.NoError(t, srv.CreateBucket(ctx, "values"))
	root := rootURL(srv, "values", "e2e")

	want, err := pipeline.Run(ctx, pipelines.Build(pipelines.BigValues), local.New(nil), &pipeline.RunOptions{Artifacts: root})
	require.NoError(t, err)
	for _, backend := range clusterBackends {
		t.Run(backend, func(t *testing.T) {
			ns, _ := namespace(t, true)
			secretFromEnv(t, ns, "store", srv.Env())
			b := clusterBackendWith(t, backend, kubepod.Options{Namespace: ns, Image: imageFor(t, backend, pipelines.BigValues), ArtifactSecret: "store"})
			got, err := pipeline.Run(ctx, pipelines.Build(pipelines.BigValues), b, &pipeline.RunOptions{Artifacts: root})
			require.NoError(t, err, summary(got))
			for _, step := range []string{"sum", "total", "each"} {
				assert.Equal(t, string(want.Step(step).Output), string(got.Step(step).Output), step)
			}
			// make's output went out of band, and the values are
			// deleted with the run: the final status holds it whole,
			// read back before that, as the local run's does.
			mk := got.Step("make").Output
			assert.False(t, artifact.HasValues(mk), "make's output in the final status refers to deleted values: %.200s", mk)
			assert.JSONEq(t, string(want.Step("make").Output), string(mk), "make's output in the final status")
			require.Len(t, got.Step("each").Instances, len(want.Step("each").Instances))
			for i, in := range want.Step("each").Instances {
				assert.Equal(t, string(in.Output), string(got.Step("each").Instances[i].Output), in.Name)
			}
			s, err := artifact.Open(ctx, root)
			require.NoError(t, err)
			defer s.Close()
			objs, err := s.List(ctx, "bigvalues", got.RunID)
			require.NoError(t, err)
			assert.Empty(t, objs, "the promoted values are deleted when the run ends")
		})
	}
	assert.Equal(t, "40000", string(want.Step("total").Output))
}

// A store's records on a real S3 server: a create is conditional (If-None-Match),
// so of racing creators exactly one wins, and the loser's data is lost
// nowhere.
func TestS3Records(t *testing.T) {
	srv := s3test.StartT(t)
	srv.Setenv(t)
	ctx := t.Context()
	require.NoError(t, srv.CreateBucket(ctx, "records"))
	s, err := artifact.Open(ctx, rootURL(srv, "records", "team"))
	require.NoError(t, err)
	defer s.Close()

	require.NoError(t, s.CreateRecord(ctx, "registry/m/1.json", []byte(`{"v":1}`)))
	require.ErrorIs(t, s.CreateRecord(ctx, "registry/m/1.json", []byte(`{"v":2}`)), artifact.ErrRecordExists)
	got, err := s.ReadRecord(ctx, "registry/m/1.json")
	require.NoError(t, err)
	assert.JSONEq(t, `{"v":1}`, string(got))
	_, err = s.ReadRecord(ctx, "registry/m/2.json")
	require.ErrorIs(t, err, artifact.ErrNoRecord)

	var wg sync.WaitGroup
	var wins atomic.Int32
	for i := range 8 {
		wg.Go(func() {
			if err := s.CreateRecord(ctx, "race/key.json", fmt.Appendf(nil, `{"i":%d}`, i)); err == nil {
				wins.Add(1)
			} else {
				assert.ErrorIs(t, err, artifact.ErrRecordExists)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), wins.Load(), "one creator wins")
	keys, err := s.Records(ctx, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"race/key.json", "registry/m/1.json"}, keys)
}
