// Package s3test runs a real S3-compatible server for the project's tests:
// versitygw (github.com/versity/versitygw, pinned in
// tools/e2e/versitygw/go.mod and built by tools/e2e/build) with its POSIX
// backend, listening on a free port of 127.0.0.1.
//
//	SLUICE_E2E_BIN=$(tools/e2e/build) go test ./internal/s3test/
//
// Start starts one server per call, with a root access key and secret made
// at random for that start; its objects live under a directory of the
// caller's (a test's t.TempDir()). A test then reaches it either through
// gocloud.dev/blob (BucketURL, with the credentials in the environment:
// Setenv) or hands Env to a process it starts. The credentials are never in
// a URL.
//
// The server runs in a process group of its own that Stop ends, and that
// the kernel kills if the test process dies first (Pdeathsig), so no server
// outlives the tests.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	// BinaryName is the server binary's name in the bin dir.
	BinaryName = "versitygw"
	// DefaultRegion is the region the server is started with.
	DefaultRegion = "us-east-1"

	startTimeout = 30 * time.Second
	stopGrace    = 10 * time.Second
)

// Server is a running versitygw.
type Server struct {
	// Endpoint is the server's base URL, http://127.0.0.1:PORT.
	Endpoint string
	// Region is the region the server signs and answers for.
	Region string
	// AccessKey and SecretKey are the root user's credentials.
	AccessKey, SecretKey string
	// Dir holds the server's log (versitygw.log), its POSIX backend's root
	// (data/, one directory per bucket) and its object metadata (meta/).
	Dir string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // of cmd.Wait, once done is closed
}

// Binary returns the path of the versitygw binary in binDir, or an error
// saying how to build it.
func Binary(binDir string) (string, error) {
	if binDir == "" {
		return "", errors.New("s3test: no bin dir: build the binaries with tools/e2e/build and pass its output (SLUICE_E2E_BIN=$(tools/e2e/build))")
	}
	p := filepath.Join(binDir, BinaryName)
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("s3test: %s not found in %s (build it with tools/e2e/build): %w", BinaryName, binDir, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("s3test: %s is not an executable file (rebuild with tools/e2e/build)", p)
	}
	return p, nil
}

// Start starts versitygw from binDir on a free port of 127.0.0.1, its
// POSIX backend rooted at dir/data, its log in dir/versitygw.log, and
// returns once it answers a signed request. ctx bounds the start only;
// Stop ends the server.
func Start(ctx context.Context, binDir, dir string) (*Server, error) {
	bin, err := Binary(binDir)
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"data", "meta"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("s3test: %w", err)
		}
	}
	s := &Server{Region: DefaultRegion, Dir: dir, AccessKey: "SLUICE" + randomHex(7), SecretKey: randomHex(20)}
	// The port is free when picked but may be taken before versitygw binds
	// it; the server then exits at once and another port is tried.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		lastErr = s.start(ctx, bin, port)
		if lastErr == nil {
			return s, nil
		}
		if !s.exited() || !strings.Contains(s.LogTail(4000), "address already in use") {
			break // not a lost race for the port
		}
	}
	return nil, lastErr
}

// start runs one attempt of Start on port.
func (s *Server) start(ctx context.Context, bin string, port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.Endpoint = "http://" + addr
	log, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("s3test: %w", err)
	}
	args := []string{
		"--port", addr,
		"--region", s.Region,
		"--keep-alive",
		"posix",
		"--sidecar", filepath.Join(s.Dir, "meta"),
		filepath.Join(s.Dir, "data"),
	}
	cmd := exec.Command(bin, args...)
	// The credentials go by environment, not argv (ps shows argv).
	cmd.Env = append(serverEnviron(),
		"ROOT_ACCESS_KEY_ID="+s.AccessKey,
		"ROOT_SECRET_ACCESS_KEY="+s.SecretKey,
	)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(log, "s3test: starting %s %s\n", bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("s3test: starting %s: %w", BinaryName, err)
	}
	s.cmd, s.done, s.err = cmd, make(chan struct{}), nil
	done := s.done
	go func() {
		s.err = cmd.Wait()
		log.Close()
		close(done)
	}()
	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		return err
	}
	return nil
}

// waitReady polls the server with a signed ListBuckets until it answers,
// the process exits, ctx ends or startTimeout passes.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	client := s.Client()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		_, lastErr = client.ListBuckets(actx, &s3.ListBucketsInput{}, func(o *s3.Options) {
			o.RetryMaxAttempts = 1
		})
		acancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("s3test: %s exited at start (%v); log %s:\n%s", BinaryName, s.err, s.LogPath(), s.LogTail(4000))
		case <-ctx.Done():
			return fmt.Errorf("s3test: %s did not answer at %s (%w; last: %v); log %s:\n%s", BinaryName, s.Endpoint, ctx.Err(), lastErr, s.LogPath(), s.LogTail(4000))
		case <-tick.C:
		}
	}
}

// exited reports whether the last started process has exited.
func (s *Server) exited() bool {
	if s.done == nil {
		return true
	}
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Stop ends the server: SIGTERM to its process group and, if it has not
// exited after a grace period, SIGKILL. It returns nil for a server that
// exited by the signal, and may be called more than once.
func (s *Server) Stop() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	if !s.exited() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(stopGrace):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
		return nil
	}
	var exit *exec.ExitError
	if s.err != nil && !errors.As(s.err, &exit) {
		return s.err
	}
	return nil
}

// LogPath is the server's log file.
func (s *Server) LogPath() string { return filepath.Join(s.Dir, "versitygw.log") }

// LogTail returns at most the last n bytes of the server's log.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.LogPath())
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Client returns an S3 client for the server with its root credentials,
// path-style addressing and nothing read from the environment or ~/.aws.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// CreateBucket creates bucket name on the server.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	_, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		return fmt.Errorf("s3test: creating bucket %q: %w", name, err)
	}
	return nil
}

// BucketURL is the gocloud.dev/blob URL of bucket on this server, for
// blob.OpenBucket with gocloud.dev/blob/s3blob imported:
//
//	s3://BUCKET?endpoint=http%3A%2F%2F127.0.0.1%3APORT&region=us-east-1&use_path_style=true
//
// endpoint sends every request to the server (over http, as its scheme
// says), use_path_style puts the bucket in the path rather than the host
// name. The credentials are not in it: the opener reads them from the
// environment (Setenv, Env).
func (s *Server) BucketURL(bucket string) string {
	q := url.Values{}
	q.Set("endpoint", s.Endpoint)
	q.Set("region", s.Region)
	q.Set("use_path_style", "true")
	return (&url.URL{Scheme: "s3", Host: bucket, RawQuery: q.Encode()}).String()
}

// Env is the environment, as KEY=VALUE, that makes the AWS SDK of a
// process — gocloud.dev/blob's s3blob included — use this server's
// credentials and region, and nothing of the machine's: no ~/.aws config
// or credentials file, no profile, session token or endpoint from the
// caller's environment, no EC2 instance metadata look-up. Appended after
// os.Environ() it overrides those variables (an empty value counts as
// unset to the SDK).
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + s.Region,
		"AWS_DEFAULT_REGION=" + s.Region,
		"AWS_PROFILE=",
		"AWS_DEFAULT_PROFILE=",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL=",
		"AWS_ENDPOINT_URL_S3=",
		"AWS_CA_BUNDLE=",
		"AWS_ROLE_ARN=",
		"AWS_WEB_IDENTITY_TOKEN_FILE=",
	}
}

// Setenv applies Env to the test process with t.Setenv (so the test must
// not be parallel), restored when t ends.
func (s *Server) Setenv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// serverEnviron is the test process's environment less what versitygw
// would read as its own configuration (VGW_*, ROOT_*, LOGFILE, WEBHOOK)
// and the AWS_* variables of the machine.
func serverEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "VGW_"), strings.HasPrefix(k, "ROOT_"), strings.HasPrefix(k, "AWS_"),
			k == "LOGFILE", k == "WEBHOOK":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("s3test: picking a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// randomHex returns 2n random hex digits, upper case.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// Environment variables that locate and require the binaries (the same as
// internal/testcluster's).
const (
	// BinEnv names the directory tools/e2e/build prints.
	BinEnv = "SLUICE_E2E_BIN"
	// RequiredEnv, when "1", makes a missing binary a test failure instead
	// of a reason to skip (CI sets it).
	RequiredEnv = "SLUICE_E2E_REQUIRED"
)

// StartT starts a server for t from $SLUICE_E2E_BIN, in a directory of
// t.TempDir(), stopped when t ends. Without the binary t skips, saying how
// to build it — or fails, when $SLUICE_E2E_REQUIRED is 1.
func StartT(t testing.TB) *Server {
	t.Helper()
	binDir := os.Getenv(BinEnv)
	if _, err := Binary(binDir); err != nil {
		if os.Getenv(RequiredEnv) == "1" {
			t.Fatalf("%v (%s=1)", err, RequiredEnv)
		}
		t.Skipf("no S3 server: %v; run with %s=$(tools/e2e/build)", err, BinEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*startTimeout)
	defer cancel()
	s, err := Start(ctx, binDir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stopping %s: %v", BinaryName, err)
		}
		if t.Failed() {
			t.Logf("%s log (%s), last lines:\n%s", BinaryName, s.LogPath(), s.LogTail(3000))
		}
	})
	return s
}
