package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-ml/sluice/artifact"
	_ "github.com/sluice-ml/sluice/artifact/stores"
	"github.com/sluice-ml/sluice/internal/s3test"
)

// BenchmarkS3Artifact compares the SDK with what a user would write with
// the AWS SDK alone, on the same S3 server (versitygw on 127.0.0.1, see
// package s3test) and the same bytes, in one run:
//
//	SLUICE_E2E_BIN=$(tools/e2e/build) go test -run '^$' -bench S3Artifact ./e2e/
//
// It needs only the S3 server: with -run '^$' and no benchmark that
// needs the cluster, the package's TestMain does not start it. The artifact is SLUICE_ARTIFACT_BENCH_BYTES long,
// 64 MiB by default; the figures are for 1 GiB:
//
//	SLUICE_ARTIFACT_BENCH_BYTES=1073741824 SLUICE_E2E_BIN=... go test -run '^$' -bench S3Artifact -benchtime 3x ./e2e/
//
// Sub-benchmarks:
//
//	SDK/Write    artifact.WriteFile of a local file (the gocloud.dev s3blob
//	             driver: a multipart upload by the AWS transfer manager)
//	SDK/Read     Artifact.Open → io.Copy to io.Discard, digest checked
//	Raw/Put      s3.PutObject of the same file, an *os.File as the body:
//	             one seekable, streamed PUT, as a user without the
//	             transfer manager writes it (the AWS SDK's defaults:
//	             its request checksum)
//	Raw/Get      s3.GetObject → io.Copy of the body to io.Discard
//	Ratio/Write  SDK/Write then Raw/Put in each op; reports sdk/raw, the
//	             ratio of their times, and each one's MB/s
//	Ratio/Read   the same for SDK/Read and Raw/Get
//
// Every op writes a new object, and the one before is deleted with the
// timer stopped, followed by a sync, so that no op pays for replacing an
// object or for the write-back of another. Besides MB/s, each reports
// peak-heap-MB (the largest growth of the Go heap in use) and
// peak-rss-MB, the peak resident set of the test process (VmHWM of
// /proc/self/status, reset through /proc/self/clear_refs at its start);
// the server's memory is its own process's, and is not counted.
func BenchmarkS3Artifact(b *testing.B) {
	srv := s3test.StartT(b)
	srv.Setenv(b)
	ctx := b.Context()
	const bucket = "bench"
	if err := srv.CreateBucket(ctx, bucket); err != nil {
		b.Fatal(err)
	}
	n := s3BenchBytes(b)
	dir := b.TempDir()
	src := s3BenchSource(b, dir, n)
	s, err := artifact.Open(ctx, rootURL(srv, bucket, "root"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tctx := artifact.NewContext(ctx, artifact.Scope{Store: s, Dir: filepath.Join(dir, "downloads"),
		Producer: artifact.Producer{Pipeline: "bench", Run: "run-1", Step: "step"}})
	client := srv.Client()

	var (
		i    int
		last func()
	)
	// untimed deletes what the op before wrote and syncs, with the timer
	// stopped.
	untimed := func(b *testing.B) {
		b.StopTimer()
		if last != nil {
			last()
			last = nil
		}
		syscall.Sync()
		b.StartTimer()
	}
	deleteKey := func(b *testing.B, key string) func() {
		return func() {
			if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	sdkWrite := func(b *testing.B) {
		untimed(b)
		i++
		a, err := artifact.WriteFile[artifact.File](tctx, "big-"+strconv.Itoa(i), src)
		if err != nil {
			b.Fatal(err)
		}
		if a.Size != n {
			b.Fatalf("wrote %d bytes, want %d", a.Size, n)
		}
		last = deleteKey(b, "root/bench/run-1/step/big-"+strconv.Itoa(i))
	}
	rawPut := func(b *testing.B) {
		untimed(b)
		i++
		key := "raw/big-" + strconv.Itoa(i)
		f, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: f}); err != nil {
			b.Fatal(err)
		}
		last = deleteKey(b, key)
	}

	// What the reads read.
	a, err := artifact.WriteFile[artifact.File](tctx, "read", src)
	if err != nil {
		b.Fatal(err)
	}
	rawKey := "raw/read"
	f, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	_, err = client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(rawKey), Body: f})
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	sdkRead := func(b *testing.B) {
		r, err := a.Open(tctx)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		if got, err := io.Copy(io.Discard, r); err != nil || got != n { // the last Read checks the digest
			b.Fatalf("read %d bytes, want %d: %v", got, n, err)
		}
	}
	rawGet := func(b *testing.B) {
		out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(rawKey)})
		if err != nil {
			b.Fatal(err)
		}
		defer out.Body.Close()
		if got, err := io.Copy(io.Discard, out.Body); err != nil || got != n {
			b.Fatalf("read %d bytes, want %d: %v", got, n, err)
		}
	}

	b.Run("SDK", func(b *testing.B) {
		s3Measure(b, "Write", n, sdkWrite)
		s3Measure(b, "Read", n, sdkRead)
	})
	b.Run("Raw", func(b *testing.B) {
		s3Measure(b, "Put", n, rawPut)
		s3Measure(b, "Get", n, rawGet)
	})
	b.Run("Ratio", func(b *testing.B) {
		s3Ratio(b, "Write", n, sdkWrite, rawPut)
		s3Ratio(b, "Read", n, sdkRead, rawGet)
	})
	b.StopTimer()
	untimed(b)
}

// s3Measure runs op, which moves n bytes, as the sub-benchmark name.
func s3Measure(b *testing.B, name string, n int64, op func(b *testing.B)) {
	b.Run(name, func(b *testing.B) {
		b.SetBytes(n)
		b.ReportAllocs()
		stop := s3Peaks(b)
		b.ResetTimer()
		for b.Loop() {
			op(b)
		}
		b.StopTimer()
		stop()
	})
}

// s3Ratio runs sdk and raw, which each move n bytes, in each op of the
// sub-benchmark name, timing each, and reports the ratio of their times.
func s3Ratio(b *testing.B, name string, n int64, sdk, raw func(b *testing.B)) {
	b.Run(name, func(b *testing.B) {
		var tSDK, tRaw time.Duration
		// timed runs op, adding its time, without what op runs with the
		// timer stopped, to *d.
		timed := func(op func(b *testing.B), d *time.Duration) {
			start := b.Elapsed()
			op(b)
			*d += b.Elapsed() - start
		}
		stop := s3Peaks(b)
		b.ResetTimer()
		k := 0
		for b.Loop() {
			// Alternate which goes first.
			if k%2 == 0 {
				timed(sdk, &tSDK)
				timed(raw, &tRaw)
			} else {
				timed(raw, &tRaw)
				timed(sdk, &tSDK)
			}
			k++
		}
		b.StopTimer()
		stop()
		mb := float64(n) * float64(k) / 1e6
		b.ReportMetric(tSDK.Seconds()/tRaw.Seconds(), "sdk/raw")
		b.ReportMetric(mb/tSDK.Seconds(), "sdk-MB/s")
		b.ReportMetric(mb/tRaw.Seconds(), "raw-MB/s")
	})
}

// s3Peaks starts measuring the peak growth of the Go heap in use and the
// peak resident set of the process; stop reports them as peak-heap-MB
// and peak-rss-MB.
func s3Peaks(b *testing.B) (stop func()) {
	runtime.GC()
	rssReset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	inuse := func() uint64 {
		metrics.Read(s)
		return s[0].Value.Uint64() + s[1].Value.Uint64()
	}
	base := inuse()
	peak := base
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				peak = max(peak, inuse())
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		b.ReportMetric(float64(peak-base)/(1<<20), "peak-heap-MB")
		if hwm, err := vmHWM(); err == nil && rssReset {
			b.ReportMetric(float64(hwm)/(1<<20), "peak-rss-MB")
		}
	}
}

// vmHWM is the peak resident set of the process, in bytes.
func vmHWM() (int64, error) {
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(st))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, io.ErrUnexpectedEOF
}

// s3BenchBytes is the artifact's size: SLUICE_ARTIFACT_BENCH_BYTES, 64 MiB
// by default.
func s3BenchBytes(b *testing.B) int64 {
	s := os.Getenv("SLUICE_ARTIFACT_BENCH_BYTES")
	if s == "" {
		return 64 << 20
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		b.Fatalf("SLUICE_ARTIFACT_BENCH_BYTES=%q: want a positive number of bytes", s)
	}
	return n
}

// s3BenchSource writes n bytes (a random MiB, repeated) to a new file in
// dir.
func s3BenchSource(b *testing.B, dir string, n int64) string {
	block := make([]byte, 1<<20)
	rand.Read(block)
	name := filepath.Join(dir, "source")
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	for left := n; left > 0; left -= int64(len(block)) {
		if _, err := f.Write(block[:min(left, int64(len(block)))]); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return name
}
