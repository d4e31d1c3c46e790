package pipelinetest

import (
	"bytes"
	"context"
	"io"

	"github.com/sluice-ml/sluice/artifact"
)

// seedProducer is the producer of the artifacts Seed writes.
var seedProducer = artifact.Producer{Pipeline: "test", Run: "seed", Step: "seed"}

// Store returns the Env's artifact store: in memory, empty when the Env
// is created, shared by all its runs (the local executor's
// Options.Store) and by [Seed], [Env.ReadArtifact] and
// [Result.Artifacts]. It is closed when the test ends.
func (e *Env) Store() *artifact.Store { e.usable("Store"); return e.store }

// ArtifactContext returns ctx carrying the Env's artifact store, as the
// context of a task of the Env's runs does, with the producer of [Seed]:
// use it to call a task's function directly, or to read an artifact with
// its own methods (Artifact.ReadJSON, Artifact.Path).
func (e *Env) ArtifactContext(ctx context.Context) context.Context {
	e.usable("ArtifactContext")
	if ctx == nil {
		e.t.Fatalf("pipelinetest: ArtifactContext(nil): pass a context, such as t.Context()")
	}
	return artifact.NewContext(ctx, artifact.Scope{Store: e.store, Producer: seedProducer})
}

// Seed writes data as the artifact name into e's store and returns it,
// typed as T, for a test to feed to a step (as a fixed input field) or to
// return from a stub, standing for what an upstream step or an earlier
// run would have produced. opts set its media type and metadata. Seeding
// a name again replaces the earlier bytes; an artifact returned before
// then no longer reads (its digest no longer matches). Seeded artifacts
// are stored under test/seed/seed/<name>, apart from any run's. Seed
// fails the test if the write fails.
//
//	raw := pipelinetest.Seed[artifact.Dataset](env, "raw", []byte("a,b\n1,2\n"), artifact.MediaType("text/csv"))
//	pipeline.Add(p, prep, PrepIn{Raw: raw})
func Seed[T artifact.Typed](e *Env, name string, data []byte, opts ...artifact.Option) T {
	e.usable("Seed")
	e.t.Helper()
	if name == "" {
		e.t.Fatalf("pipelinetest: Seed with no name; name the artifact, as a task names what it writes")
	}
	a, err := artifact.Write[T](e.ArtifactContext(context.Background()), name, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(data))
		return err
	}, opts...)
	if err != nil {
		e.t.Fatalf("pipelinetest: Seed(%q): %v", name, err)
	}
	return a
}

// ReadArtifact returns the bytes of a, an artifact seeded in e or written
// by a task of one of e's runs, checked against its digest (a mismatch
// is an error wrapping artifact.ErrCorrupt). Pass a typed form's
// embedded Artifact: env.ReadArtifact(out.Train.Artifact).
func (e *Env) ReadArtifact(a artifact.Artifact) ([]byte, error) {
	e.usable("ReadArtifact")
	e.t.Helper()
	if a.URI == "" {
		e.t.Fatalf("pipelinetest: ReadArtifact of a zero artifact.Artifact (no URI); pass one that Seed returned or a step wrote (a typed form's embedded Artifact)")
	}
	return a.ReadAll(e.ArtifactContext(context.Background()))
}

// Artifacts returns the objects the run stored in the Env's store (its
// artifacts and any promoted values), in key order; keys are
// <pipeline>/<run>/<step>[/<instance>]/<name>. It fails the test when the
// pipeline did not run or the store cannot be listed.
func (r *Result) Artifacts() []artifact.Object {
	r.usable("Artifacts")
	r.t.Helper()
	if r.Status == nil {
		r.t.Fatalf("pipelinetest: the pipeline did not run: %v", r.err)
	}
	objs, err := r.store.List(context.Background(), r.Status.Pipeline, r.Status.RunID)
	if err != nil {
		r.t.Fatalf("pipelinetest: artifacts of run %s: %v", r.Status.RunID, err)
	}
	return objs
}
