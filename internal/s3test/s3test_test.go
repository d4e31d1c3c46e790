package s3test_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"

	"github.com/sluice-ml/sluice/internal/s3test"
)

const bucket = "sluice-test"

// open starts a server with bucket in it, puts its credentials in the
// environment and opens the bucket through its URL.
func open(t *testing.T) (*s3test.Server, *blob.Bucket) {
	t.Helper()
	s := s3test.StartT(t)
	ctx := context.Background()
	if err := s.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	s.Setenv(t)
	b, err := blob.OpenBucket(ctx, s.BucketURL(bucket))
	if err != nil {
		t.Fatalf("OpenBucket(%s): %v", s.BucketURL(bucket), err)
	}
	t.Cleanup(func() { b.Close() })
	return s, b
}

func TestBucketURLHasNoCredentials(t *testing.T) {
	s := &s3test.Server{Endpoint: "http://127.0.0.1:1234", Region: "us-east-1", AccessKey: "AKEY", SecretKey: "SKEY"}
	got := s.BucketURL("b")
	want := "s3://b?endpoint=http%3A%2F%2F127.0.0.1%3A1234&region=us-east-1&use_path_style=true"
	if got != want {
		t.Errorf("BucketURL = %s, want %s", got, want)
	}
	if strings.Contains(got, "AKEY") || strings.Contains(got, "SKEY") {
		t.Errorf("BucketURL %s has the credentials", got)
	}
}

func TestBinaryMissing(t *testing.T) {
	_, err := s3test.Binary(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "tools/e2e/build") {
		t.Errorf("Binary(empty dir) = %v, want an error naming tools/e2e/build", err)
	}
}

func TestWriteReadListDelete(t *testing.T) {
	_, b := open(t)
	ctx := context.Background()

	objs := map[string]string{
		"runs/r1/a.txt":   "alpha",
		"runs/r1/b.txt":   "beta",
		"runs/r2/c.txt":   "gamma",
		"other/d.txt":     "delta",
		"runs/r1/sub/e.x": "",
	}
	for k, v := range objs {
		if err := b.WriteAll(ctx, k, []byte(v), nil); err != nil {
			t.Fatalf("WriteAll(%s): %v", k, err)
		}
	}
	for k, v := range objs {
		got, err := b.ReadAll(ctx, k)
		if err != nil {
			t.Fatalf("ReadAll(%s): %v", k, err)
		}
		if string(got) != v {
			t.Errorf("ReadAll(%s) = %q, want %q", k, got, v)
		}
	}

	list := func(opts *blob.ListOptions) []string {
		t.Helper()
		var keys []string
		it := b.List(opts)
		for {
			o, err := it.Next(ctx)
			if err == io.EOF {
				return keys
			}
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			keys = append(keys, o.Key)
		}
	}
	if got, want := strings.Join(list(&blob.ListOptions{Prefix: "runs/r1/"}), ","), "runs/r1/a.txt,runs/r1/b.txt,runs/r1/sub/e.x"; got != want {
		t.Errorf("List(runs/r1/) = %s, want %s", got, want)
	}
	if got, want := strings.Join(list(&blob.ListOptions{Prefix: "runs/", Delimiter: "/"}), ","), "runs/r1/,runs/r2/"; got != want {
		t.Errorf("List(runs/, /) = %s, want %s", got, want)
	}

	if err := b.Delete(ctx, "runs/r1/a.txt"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if ok, err := b.Exists(ctx, "runs/r1/a.txt"); err != nil || ok {
		t.Errorf("Exists after Delete = %v, %v; want false, nil", ok, err)
	}
	_, err := b.ReadAll(ctx, "runs/r1/a.txt")
	if gcerrors.Code(err) != gcerrors.NotFound {
		t.Errorf("ReadAll of a deleted key: %v (code %v), want NotFound", err, gcerrors.Code(err))
	}
	if got, want := strings.Join(list(&blob.ListOptions{Prefix: "runs/r1/"}), ","), "runs/r1/b.txt,runs/r1/sub/e.x"; got != want {
		t.Errorf("List(runs/r1/) after Delete = %s, want %s", got, want)
	}
}

// TestLargeObjectMultipart streams 64 MiB in and out: more than one part
// of the writer's upload, so the server's multipart upload is used.
func TestLargeObjectMultipart(t *testing.T) {
	s, b := open(t)
	ctx := context.Background()
	const size = 64 << 20
	const key = "big/blob.bin"

	src := func() io.Reader {
		return io.LimitReader(rand.NewChaCha8([32]byte{1, 2, 3}), size)
	}
	want := sha256.New()
	if _, err := io.Copy(want, src()); err != nil {
		t.Fatal(err)
	}

	w, err := b.NewWriter(ctx, key, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, src()); err != nil {
		w.Close()
		t.Fatalf("writing: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("closing the writer: %v", err)
	}

	attrs, err := b.Attributes(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Size != size {
		t.Errorf("size = %d, want %d", attrs.Size, size)
	}
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := sha256.New()
	n, err := io.Copy(got, r)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Errorf("read back %d bytes, sha256 %x; want %d bytes, %x", n, got.Sum(nil), size, want.Sum(nil))
	}

	// The server logs each request; a multipart upload's parts are lines
	// like "… | PUT | /sluice-test/big/blob.bin | - | partNumber=1&uploadId=…&x-id=UploadPart".
	if parts := strings.Count(s.LogTail(1<<20), "x-id=UploadPart"); parts < 2 {
		t.Errorf("%d UploadPart requests in the server's log, want several:\n%s", parts, s.LogTail(3000))
	}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestWrongCredentials(t *testing.T) {
	s, b := open(t)
	ctx := context.Background()
	if err := b.WriteAll(ctx, "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, env, value, code string
		// existsErr is whether Exists fails: a HEAD has no body, so only
		// the status tells, and s3blob takes versitygw's 404 for an
		// unknown access key as "no such object" (false, nil).
		existsErr bool
	}{
		// Observed (versitygw v1.8.0):
		//   blob (key "k") (code=Unknown): operation error S3: PutObject, https response error StatusCode: 403,
		//   RequestID: 7VASOO52GZHMDRTM, HostID: sR9X…, api error SignatureDoesNotMatch: The request signature
		//   we calculated does not match the signature you provided. Check your key and signing method.
		{"secret", "AWS_SECRET_ACCESS_KEY", "wrong-secret", "SignatureDoesNotMatch", true},
		// Observed (versitygw v1.8.0; AWS itself answers 403 InvalidAccessKeyId):
		//   blob (key "k") (code=Unknown): operation error S3: PutObject, https response error StatusCode: 404,
		//   RequestID: 0W7U7TH9OZCRKHL3, HostID: vVci…, api error XAdminUserNotFound: No user exists with the
		//   provided access key ID.
		{"access key", "AWS_ACCESS_KEY_ID", "NOSUCHKEY", "XAdminUserNotFound", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.Setenv(t)
			t.Setenv(c.env, c.value)
			b, err := blob.OpenBucket(ctx, s.BucketURL(bucket))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			err = b.WriteAll(ctx, "k", []byte("v"), nil)
			t.Logf("WriteAll with a wrong %s: %v", c.name, err)
			if got := apiCode(err); got != c.code {
				t.Errorf("WriteAll with a wrong %s = %v (code %q), want code %s", c.name, err, got, c.code)
			}
			_, err = b.ReadAll(ctx, "k")
			t.Logf("ReadAll with a wrong %s: %v", c.name, err)
			if got := apiCode(err); got != c.code {
				t.Errorf("ReadAll with a wrong %s = %v (code %q), want code %s", c.name, err, got, c.code)
			}
			// Observed with a wrong secret: false, blob (key "k") (code=PermissionDenied): operation error
			// S3: HeadObject, https response error StatusCode: 403, …, api error Forbidden: Forbidden
			ok, err := b.Exists(ctx, "k")
			t.Logf("Exists with a wrong %s: %v, %v", c.name, ok, err)
			if c.existsErr && gcerrors.Code(err) != gcerrors.PermissionDenied {
				t.Errorf("Exists with a wrong %s = %v, %v; want a PermissionDenied error", c.name, ok, err)
			}
			if !c.existsErr && (ok || err != nil) {
				t.Errorf("Exists with a wrong %s = %v, %v; want false, nil as observed", c.name, ok, err)
			}
		})
	}
}

func TestMissingBucket(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	b, err := blob.OpenBucket(ctx, s.BucketURL("no-such-bucket"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.WriteAll(ctx, "k", []byte("v"), nil)
	// Observed: blob (key "k") (code=NotFound): operation error S3: PutObject, https response error StatusCode: 404, RequestID: …, HostID: …, api error NoSuchBucket: The specified bucket does not exist.
	t.Logf("WriteAll to a missing bucket: %v", err)
	if err == nil || !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Errorf("WriteAll to a missing bucket = %v, want an error with NoSuchBucket", err)
	}
	if gcerrors.Code(err) != gcerrors.NotFound {
		t.Errorf("code %v, want NotFound", gcerrors.Code(err))
	}
	ok, err := b.IsAccessible(ctx)
	if err != nil || ok {
		t.Errorf("IsAccessible = %v, %v; want false, nil", ok, err)
	}
}

// TestEnvForProcess runs this test binary as another process with only
// Env and a BucketURL, as a pod's program run on the host would be: it
// reads an object and writes one.
func TestEnvForProcess(t *testing.T) {
	s, b := open(t)
	ctx := context.Background()
	if err := b.WriteAll(ctx, "in.txt", []byte("from the parent"), nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// TestMain runs child instead of the tests when S3TEST_CHILD_URL is set.
	cmd := exec.CommandContext(ctx, os.Args[0])
	// A machine's AWS settings must not leak in: point HOME at nothing.
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "S3TEST_CHILD_URL="+s.BucketURL(bucket))
	cmd.Env = append(cmd.Env, s.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	got, err := b.ReadAll(ctx, "out.txt")
	if err != nil {
		t.Fatalf("reading the child's object: %v (child said: %s)", err, out)
	}
	if string(got) != "child read: from the parent" {
		t.Errorf("child wrote %q", got)
	}
}

func TestMain(m *testing.M) {
	if u := os.Getenv("S3TEST_CHILD_URL"); u != "" {
		if err := child(u); err != nil {
			os.Stderr.WriteString("child: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is the other process of TestEnvForProcess.
func child(u string) error {
	ctx := context.Background()
	b, err := blob.OpenBucket(ctx, u)
	if err != nil {
		return err
	}
	defer b.Close()
	in, err := b.ReadAll(ctx, "in.txt")
	if err != nil {
		return err
	}
	if len(in) == 0 {
		return errors.New("empty in.txt")
	}
	return b.WriteAll(ctx, "out.txt", append([]byte("child read: "), in...), nil)
}
