package e2e

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
	_ "github.com/sluice-ml/sluice/artifact/stores"
	"github.com/sluice-ml/sluice/internal/s3test"
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
