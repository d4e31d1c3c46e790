package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"
)

// Store is an artifact store: a root URL in object storage under which
// runs write their artifacts, by the layout
//
//	<root>/<pipeline>/<run>/<step>[/<instance>]/<name>
//
// A Store is safe for concurrent use. Close it when done.
type Store struct {
	root   string // the normalized root URL, no trailing slash
	base   string // the URL of the bucket's top: file:///dir, s3://bucket
	scheme string
	prefix string // the key prefix inside the bucket: "" or "a/b/"
	query  string // the root's query, carried into artifact URIs
	given  string // root as given, for messages
	u      *url.URL

	mu      sync.Mutex
	bucket  *blob.Bucket // nil until open
	openErr error
	others  map[string]*blob.Bucket // buckets of artifacts outside root, by URL
}

// Schemes are the URL schemes a root can have. file:// and mem:// are
// always there; s3:// (and S3-compatible servers, with ?endpoint=),
// gs:// and azblob:// need their drivers linked into the program:
//
//	import _ "github.com/sluice-ml/sluice/artifact/stores"
var Schemes = []string{"file", "mem", "s3", "gs", "azblob"}

// Open opens the artifact store at root, a URL: file:///abs/dir (or just
// /abs/dir), mem://name, s3://bucket/prefix?region=…&endpoint=…,
// gs://bucket/prefix or azblob://container/prefix. The path of an s3, gs
// or azblob URL is a key prefix inside the bucket. Open checks that the
// bucket exists and can be reached with the credentials the environment
// gives (see the package documentation, "Credentials"), so a wrong bucket
// or key fails here rather than when the first step ends.
//
// A file:// root is created when missing. Each Open of a mem:// root is a
// new, empty, in-memory store.
func Open(ctx context.Context, root string) (*Store, error) {
	s, err := OpenLazy(root)
	if err != nil {
		return nil, err
	}
	if _, err := s.open(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// OpenLazy is [Open] that checks root's form now but reaches the store
// only when it is first used: the local backend's way, so that a run
// whose tasks write no artifacts never touches it.
func OpenLazy(root string) (*Store, error) {
	u, err := parseRoot(root)
	if err != nil {
		return nil, err
	}
	s := &Store{scheme: u.Scheme, query: u.RawQuery, given: root, u: u}
	switch u.Scheme {
	case "file":
		s.root = "file://" + filepath.Clean(u.Path)
		s.base = s.root
	case "mem":
		s.root = "mem://" + u.Host + strings.TrimSuffix(u.Path, "/")
		s.prefix = keyPrefix(u.Path)
		s.base = "mem://" + u.Host
	default:
		s.root = u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/")
		s.prefix = keyPrefix(u.Path)
		s.base = u.Scheme + "://" + u.Host
	}
	if s.query != "" {
		s.root += "?" + s.query
	}
	return s, nil
}

// open returns the store's bucket, opening it and checking that it can
// be reached on the first call.
func (s *Store) open(ctx context.Context) (*blob.Bucket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bucket != nil {
		return s.bucket, nil
	}
	if s.openErr != nil {
		return nil, s.openErr
	}
	b, err := s.dial(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.openErr = err // a canceled context is not the store's fault
		}
		return nil, err
	}
	s.bucket = b
	return b, nil
}

func (s *Store) dial(ctx context.Context) (*blob.Bucket, error) {
	var (
		b   *blob.Bucket
		err error
	)
	switch s.scheme {
	case "file":
		dir := filepath.Clean(s.u.Path)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("artifact store %s: %w", s.given, err)
		}
		b, err = fileblob.OpenBucket(dir, &fileblob.Options{NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	case "mem":
		b = memblob.OpenBucket(nil)
	default:
		b, err = blob.OpenBucket(ctx, bucketURL(s.u))
	}
	if err != nil {
		return nil, storeError(s.given, err)
	}
	ok, err := b.IsAccessible(ctx)
	if err == nil && !ok {
		err = errors.New("no such bucket")
	}
	if err != nil {
		b.Close()
		return nil, accessError(s.given, s.scheme, err)
	}
	return b, nil
}

// parseRoot checks root and returns it as a URL.
func parseRoot(root string) (*url.URL, error) {
	if root == "" {
		return nil, errors.New("artifact store: no root URL; give one like file:///var/lib/sluice or s3://bucket/prefix")
	}
	if strings.HasPrefix(root, "/") {
		root = "file://" + root
	}
	u, err := url.Parse(root)
	if err != nil {
		return nil, fmt.Errorf("artifact store %q: %v", root, err)
	}
	switch {
	case u.Scheme == "":
		return nil, fmt.Errorf("artifact store %q: a relative path; give an absolute one (file:///abs/dir or /abs/dir) or a URL such as s3://bucket/prefix", root)
	case !slices.Contains(Schemes, u.Scheme):
		return nil, fmt.Errorf("artifact store %q: unknown scheme %q; use one of %s", root, u.Scheme, strings.Join(Schemes, ", "))
	case u.Scheme == "file" && u.Host != "" && u.Host != "localhost":
		return nil, fmt.Errorf("artifact store %q: a file URL has an absolute path and no host (file:///%s%s, three slashes)", root, u.Host, u.Path)
	case u.Scheme == "file" && !path.IsAbs(u.Path):
		return nil, fmt.Errorf("artifact store %q: a relative path; give an absolute one (file:///abs/dir)", root)
	case u.Scheme != "file" && u.Host == "":
		return nil, fmt.Errorf("artifact store %q: no bucket; give %s://BUCKET[/prefix]", root, u.Scheme)
	}
	if u.Scheme != "file" && u.Scheme != "mem" && !blob.DefaultURLMux().ValidBucketScheme(u.Scheme) {
		return nil, fmt.Errorf("artifact store %q: the program has no driver for %s://; add import _ \"github.com/sluice-ml/sluice/artifact/stores\" to it", root, u.Scheme)
	}
	if u.Scheme == "file" && u.RawQuery != "" {
		return nil, fmt.Errorf("artifact store %q: a file URL takes no query parameters", root)
	}
	return u, nil
}

// bucketURL is the gocloud URL of u's bucket, without its path. For
// s3, the SDK's own CRC checksums of uploads and downloads are asked
// only where the service requires them, unless the URL says otherwise:
// every artifact read is checked against its SHA-256 digest already, and
// the second hash costs a core.
func bucketURL(u *url.URL) string {
	q := u.Query()
	if u.Scheme == "s3" {
		for _, k := range []string{"request_checksum_calculation", "response_checksum_validation"} {
			if !q.Has(k) {
				q.Set(k, "when_required")
			}
		}
	}
	b := u.Scheme + "://" + u.Host
	if len(q) > 0 {
		b += "?" + q.Encode()
	}
	return b
}

func keyPrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

// storeError words an error opening a store's bucket.
func storeError(root string, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "no driver registered") {
		return fmt.Errorf("artifact store %s: the program has no driver for this scheme; add import _ \"github.com/sluice-ml/sluice/artifact/stores\" to it (%v)", root, err)
	}
	return fmt.Errorf("artifact store %s: %w", root, err)
}

// accessError words an error reaching a store's bucket, with the fix.
func accessError(root, scheme string, err error) error {
	hint := ""
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		hint = "; the bucket does not exist: create it, or fix the bucket name in the URL"
	case gcerrors.PermissionDenied:
		hint = "; access denied: check the credentials the environment gives (" + credentialHint(scheme) + ")"
	}
	msg := err.Error()
	switch {
	case hint != "":
	case strings.Contains(msg, "no such bucket") || strings.Contains(msg, "NoSuchBucket"):
		hint = "; the bucket does not exist: create it, or fix the bucket name in the URL"
	case strings.Contains(msg, "StatusCode: 403") || strings.Contains(msg, "SignatureDoesNotMatch") ||
		strings.Contains(msg, "InvalidAccessKeyId") || strings.Contains(msg, "AccessDenied"):
		// S3 drivers report refused credentials with an unknown code.
		hint = "; access denied: check the credentials the environment gives (" + credentialHint(scheme) + ")"
	}
	return fmt.Errorf("artifact store %s: cannot reach the bucket: %w%s", root, err, hint)
}

func credentialHint(scheme string) string {
	switch scheme {
	case "s3":
		return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or IRSA / EKS Pod Identity in a pod"
	case "gs":
		return "GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login, or GKE Workload Identity in a pod"
	case "azblob":
		return "AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY, or Azure Workload Identity in a pod"
	}
	return "the platform's credentials"
}

// URL returns the store's root URL.
func (s *Store) URL() string { return s.root }

// Close closes the store's buckets.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.bucket != nil {
		err = s.bucket.Close()
		s.bucket = nil
	}
	s.openErr = errors.New("artifact store " + s.given + ": closed")
	for _, b := range s.others {
		err = errors.Join(err, b.Close())
	}
	s.others = nil
	return err
}

// namePattern is what an artifact's name and each part of a layout path
// may hold: it is a part of a URL and of a file path on every store.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// CheckName returns an error unless name can name an artifact: one or more
// parts separated by "/", each a letter or digit followed by letters,
// digits, '.', '_' or '-'.
func CheckName(name string) error {
	if name == "" {
		return errors.New("an artifact needs a name")
	}
	for part := range strings.SplitSeq(name, "/") {
		if !namePattern.MatchString(part) {
			return fmt.Errorf("artifact name %q: each part must be a letter or digit followed by letters, digits, '.', '_' or '-'", name)
		}
	}
	return nil
}

// Key returns the key of artifact name of producer p inside the store, by
// the layout <pipeline>/<run>/<step>[/<instance>]/<name>.
func (s *Store) key(p Producer, name string) string {
	k := s.prefix + p.Pipeline + "/" + p.Run + "/" + p.Step + "/"
	if p.Instance != nil {
		k += strconv.Itoa(*p.Instance) + "/"
	}
	return k + name
}

// uri returns the URI of key.
func (s *Store) uri(key string) string {
	u := s.base + "/" + key
	if s.query != "" {
		u += "?" + s.query
	}
	return u
}

// locate returns the bucket and key of uri: the store's own bucket when
// uri is in it, else a bucket opened (once) for uri.
func (s *Store) locate(ctx context.Context, uri string) (*blob.Bucket, string, error) {
	if u, q, _ := strings.Cut(uri, "?"); q == s.query && strings.HasPrefix(u, s.base+"/") {
		b, err := s.open(ctx)
		return b, strings.TrimPrefix(u, s.base+"/"), err
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" || !slices.Contains(Schemes, u.Scheme) {
		return nil, "", fmt.Errorf("not an artifact URI: %q", uri)
	}
	var burl, key string
	switch u.Scheme {
	case "file":
		burl, key = "file://"+path.Dir(u.Path), path.Base(u.Path)
	case "mem":
		return nil, "", fmt.Errorf("%s is in another in-memory store", uri)
	default:
		burl, key = bucketURL(u), strings.TrimPrefix(u.Path, "/")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.others[burl]; ok {
		return b, key, nil
	}
	var b *blob.Bucket
	if u.Scheme == "file" {
		b, err = fileblob.OpenBucket(path.Dir(u.Path), &fileblob.Options{NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	} else {
		b, err = blob.OpenBucket(ctx, burl)
	}
	if err != nil {
		return nil, "", storeError(burl, err)
	}
	if s.others == nil {
		s.others = map[string]*blob.Bucket{}
	}
	s.others[burl] = b
	return b, key, nil
}

// Object is one stored artifact, as [Store.List] returns it.
type Object struct {
	// Key is the path under the root: <pipeline>/<run>/<step>[/<instance>]/<name>.
	Key     string
	URI     string
	Size    int64
	ModTime time.Time
}

// List returns the objects a run of pipeline stored, in key order.
func (s *Store) List(ctx context.Context, pipeline, run string) ([]Object, error) {
	if err := checkRun(pipeline, run); err != nil {
		return nil, err
	}
	prefix := s.prefix + pipeline + "/" + run + "/"
	b, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	it := b.List(&blob.ListOptions{Prefix: prefix})
	var out []Object
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("artifact store %s: listing run %s: %w", s.root, run, err)
		}
		if o.IsDir {
			continue
		}
		out = append(out, Object{Key: strings.TrimPrefix(o.Key, s.prefix), URI: s.uri(o.Key), Size: o.Size, ModTime: o.ModTime})
	}
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete deletes every object a run of pipeline stored and returns how
// many it deleted. Deleting a run with no objects is not an error.
func (s *Store) Delete(ctx context.Context, pipeline, run string) (int, error) {
	objs, err := s.List(ctx, pipeline, run)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range objs {
		if err := s.bucket.Delete(ctx, s.prefix+o.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound { // List opened it
			return n, fmt.Errorf("artifact store %s: deleting %s: %w", s.root, o.Key, err)
		}
		n++
	}
	return n, nil
}

func checkRun(pipeline, run string) error {
	for _, p := range []struct{ what, v string }{{"pipeline", pipeline}, {"run", run}} {
		if !namePattern.MatchString(p.v) {
			return fmt.Errorf("artifact store: %s %q is not a valid name", p.what, p.v)
		}
	}
	return nil
}

// DefaultRoot is the store local runs use when none is given: the
// directory sluice/artifacts under the user's cache directory
// (os.UserCacheDir), else under the temporary directory.
func DefaultRoot() string {
	dir, err := os.UserCacheDir()
	if err != nil || dir == "" {
		dir = os.TempDir()
	}
	return "file://" + filepath.Join(dir, "sluice", "artifacts")
}

// CheckRoot returns the error [Open] would return for root's form (not
// for reaching it): an unknown scheme, a relative path, no bucket.
func CheckRoot(root string) error {
	_, err := parseRoot(root)
	return err
}

// LocalDir returns the directory of a file:// store, without touching it.
func (s *Store) LocalDir() (string, bool) {
	if s.scheme != "file" {
		return "", false
	}
	return filepath.Clean(s.u.Path), true
}

// Runs returns the ids of the runs of pipeline that have objects in the
// store, in name order.
func (s *Store) Runs(ctx context.Context, pipeline string) ([]string, error) {
	if !namePattern.MatchString(pipeline) {
		return nil, fmt.Errorf("artifact store: pipeline %q is not a valid name", pipeline)
	}
	b, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	prefix := s.prefix + pipeline + "/"
	it := b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	var out []string
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("artifact store %s: listing the runs of %s: %w", s.root, pipeline, err)
		}
		if o.IsDir {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(o.Key, prefix), "/"))
		}
	}
	slices.Sort(out)
	return out, nil
}

// Shared reports whether the store outlives the process and is seen by
// others: every scheme but mem://.
func (s *Store) Shared() bool { return s.scheme != "mem" }
