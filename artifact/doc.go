// Package artifact moves datasets, models and other files between the
// steps of a pipeline through object storage: the bytes go to a store,
// and only their description — URI, size, SHA-256 digest, media type,
// producer, user metadata — travels between steps, in-band, whatever the
// size of the bytes.
//
// # Declaring and writing
//
// An artifact is a field of a task's output, of one of the typed forms
// [Dataset], [Model], [Metrics], [File] or [Dir]:
//
//	type PrepOut struct {
//		Train artifact.Dataset `json:"train"`
//		Rows  int              `json:"rows"`
//	}
//
// The task writes it through the SDK, with a writer:
//
//	out.Train, err = artifact.Write[artifact.Dataset](ctx, "train", func(w io.Writer) error {
//		return writeRows(w, rows)
//	}, artifact.MediaType("application/jsonl"))
//
// or from a local file or directory ([WriteFile], [WriteDir]), or, simplest,
// by returning [Local], which the SDK uploads when the task returns, named
// after its field:
//
//	return TrainOut{Model: artifact.Local[artifact.Model](path, artifact.Meta("framework", "onnx"))}, nil
//
// # Reading
//
// A downstream step takes it as an ordinary typed input,
// pipeline.Ref[artifact.Dataset], and reads it with [Artifact.Open] (a
// streaming reader), [Artifact.ReadJSON], or [Artifact.Path] (a local
// file, or directory for a Dir, downloaded on first use and shared by
// digest). Every read checks the bytes against the digest: damaged or
// replaced bytes are an error wrapping [ErrCorrupt] that names the
// artifact and the step that wrote it, never silently used data.
//
// # Speed
//
// Every byte is hashed with SHA-256 as it is written, and again as it is
// read. The hashing runs on a goroutine of its own, one 1 MiB buffer
// behind the I/O, so that with a second core a large artifact costs
// about the larger of the hashing and the copy rather than their sum. A
// stream holds at most three such buffers (from a pool shared by all
// streams), whatever its size; one shorter than a buffer is hashed
// inline, without a goroutine. Small writes, an encoder's, are gathered
// into 1 MiB store writes. [Writer] implements io.ReaderFrom and the
// reader [Artifact.Open] returns implements io.WriterTo, so io.Copy moves
// the bytes through those buffers without a further copy.
//
// SHA-256 sets the floor: about 1.2 GB/s on one core with the SHA
// extensions, slower than a file copy, so a digest-checked artifact cannot
// move as fast as io.Copy of the same file. BenchmarkLargeArtifact
// measures the SDK against plain copies, SHA-256 alone, and a copy through
// io.MultiWriter(file, sha256.New()) (the sum of the two) in one run. For
// 1 GiB on a file:// store, on a two-core machine busy with other builds
// (load 11 to 14), a read through [Artifact.Open] took 0.91 s, no more
// than SHA-256 alone takes on that machine idle (0.90 s), against 0.31 s
// for io.Copy; a write took 3.7 s and a Path 3.4 s, against 0.30 s and
// 0.63 s for io.Copy to a new file and 2.5 s for the MultiWriter copy.
//
// # Layout and atomicity
//
// A run's artifacts are at
//
//	<root>/<pipeline>/<run>/<step>[/<instance>]/<name>
//
// where root is the run's store (a pipeline option and the run flag
// -artifacts), instance the index of a fan-out's instance, and name the
// name given to the writer (for [Local], the field's JSON name). An
// artifact appears in the store only when its writer closed successfully;
// an error, a panic, a canceled context or a stopped process discards it,
// and an earlier version (from an earlier attempt) stays readable until a
// new one is complete. A [Dir] is one tar archive, so a tree is atomic too
// and has one digest.
//
// # Stores and credentials
//
// [Open] takes the root URL. file:// and mem:// are built in; s3://, gs://
// and azblob:// need the import of package
// github.com/sluice-ml/sluice/artifact/stores. The URL's path is a prefix
// inside the bucket; its query configures the driver (gocloud.dev/blob):
//
//   - file:///var/lib/sluice/artifacts (or /var/lib/sluice/artifacts): a
//     directory, created when missing. Local runs default to
//     [DefaultRoot], under the user's cache directory. Pods of a cluster
//     do not share a file system, so cluster runs need a bucket.
//   - s3://bucket/prefix?region=eu-west-1 for AWS S3; an S3-compatible
//     server (MinIO, Ceph, versitygw) adds
//     &endpoint=https://host:port&use_path_style=true. The AWS SDK's own
//     CRC checksums are asked only where S3 requires them
//     (request_checksum_calculation and response_checksum_validation
//     default to when_required; set them in the URL to choose): every
//     read is checked against the artifact's SHA-256 anyway. Credentials come
//     from the AWS SDK's default chain: AWS_ACCESS_KEY_ID and
//     AWS_SECRET_ACCESS_KEY (in a pod, from a Secret the backend names:
//     kubepod.Options.ArtifactSecret), a profile, or on EKS IRSA or Pod
//     Identity through the steps' service account.
//   - gs://bucket/prefix: Application Default Credentials:
//     GOOGLE_APPLICATION_CREDENTIALS, or on GKE Workload Identity through
//     the steps' service account.
//   - azblob://container/prefix: AZURE_STORAGE_ACCOUNT with
//     AZURE_STORAGE_KEY or a SAS token (from a Secret), or Azure Workload
//     Identity through the steps' service account.
//
// No secret value is ever part of a URL, a manifest or an artifact's
// description. A missing bucket or refused credentials fail [Open], before
// a run starts, with the fix.
//
// # Caching
//
// A step's cache key is computed from its input with every artifact
// replaced by its kind, media type and digest ([Canonical]): the same
// bytes under another run's URI are a cache hit, and changed bytes a
// miss that the local backend's CacheDiff names ("input train changed").
//
// # Values too large to travel in-band
//
// Backends carry plain outputs in bounded places (kubejob: a 4 KiB
// termination message; Argo: workflow parameters inside a 1 MiB object).
// An output that does not fit is stored as artifacts of kind "value"
// ([Promote]) and restored before the consumer decodes it ([Resolve]),
// so users never meet those limits. Promoted values are temporary:
// they are deleted when their run ends ([Store.DeleteValues]). Before
// that, the backend reads them back ([Store.Resolve]) into the run's
// final status, so the outputs a caller gets when the run ends (and the
// run summary's per-step summaries) are whole, as on the local backend;
// only a process that looks at the run after its values were deleted
// (resuming or watching it again) gets the values' descriptions.
//
// # Retention
//
// [Store.List] and [Store.Delete] list and delete a run's artifacts; every
// pipeline program has them as "prog artifacts ls|rm -run ID".
package artifact
