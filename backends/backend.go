package backends

import (
	"context"
	"reflect"
	"strings"
	"time"
)

// Backend turns a Plan into an Artifact: manifests for a cluster, or the
// record of what a local run would do.
//
// Compile must not contact a cluster. plan is guaranteed to satisfy the
// guarantees written on [Plan]; opts is guaranteed to be non-nil. A
// requirement the backend cannot honor (for example a MIG slice on a
// backend that has no GPUs) must produce an error wrapping
// errors.ErrUnsupported; it is never silently dropped. Placement hints
// (node pools, preemptible) may be ignored only where the backend's package
// doc says so.
//
// Capabilities beyond compiling are optional interfaces that package
// pipeline discovers with a type assertion: [Submitter], [Watcher],
// [Canceler], [Namer], [MachineConfigurer].
type Backend interface {
	Compile(ctx context.Context, plan *Plan, opts *CompileOptions) (Artifact, error)
}

// CompileOptions controls Compile. Package pipeline never passes nil.
type CompileOptions struct {
	// BeforeEmit, if set, is called once with the backend-native object
	// before it is rendered. The backend's package doc lists the types its
	// as function accepts; as(nil) is false.
	BeforeEmit func(as func(target any) bool) error
}

// Artifact is what a backend produced.
type Artifact interface {
	// Documents returns the rendered manifests in a stable order, one YAML
	// (or JSON) document each, each ending in a newline.
	Documents() [][]byte
	// As sets target to a backend-native type and reports whether it
	// could; As(nil) is false. The backend's package doc lists the types.
	As(target any) bool
}

// Submitter is implemented by backends that can start a run of an
// artifact they compiled.
type Submitter interface {
	// Submit starts a run and returns its id without waiting for it to
	// finish. opts is guaranteed to be non-nil.
	Submit(ctx context.Context, a Artifact, opts *SubmitOptions) (runID string, err error)
}

// SubmitOptions controls Submit.
type SubmitOptions struct {
	// RunID, if set, asks for this run id; a backend whose runs are
	// resumable continues an earlier run with the same id.
	RunID string
	// Scheduled, if set, is the time the run is for, as a scheduler
	// would start it (a backfill of an earlier day): what the
	// pipeline.RunScheduled ref gives (see [MetaRunScheduled]). Zero
	// means the run's start time. A backend that resumes a run keeps the
	// time the run was first submitted with.
	Scheduled time.Time
}

// Warner is implemented by compiled artifacts that carry warnings: what
// the run may meet that the plan cannot rule out, such as data that a
// backend must carry in-band. The program's compile and run commands
// print them on stderr.
type Warner interface {
	Warnings() []string
}

// Watcher is implemented by backends that can report a run's progress.
type Watcher interface {
	// Watch blocks until the run ends or ctx is done, calling
	// opts.Progress (if set) with every new status, and returns the last
	// status seen. A run that ended in failure is not an error of Watch:
	// the returned status says so. opts is guaranteed to be non-nil.
	Watch(ctx context.Context, runID string, opts *WatchOptions) (*RunStatus, error)
}

// WatchOptions controls Watch.
type WatchOptions struct {
	// Progress, if set, is called with a snapshot of the status each time
	// it changes, from one goroutine at a time; changes may be coalesced
	// into one call (in quick succession, or at a pace that keeps copying
	// a large run's status from slowing the run: see the backend's Watch).
	//
	// Snapshots are immutable, and may share memory with one another and
	// with the backend's own state (the attempts, outputs and instances
	// of steps): the callee must not modify a snapshot or anything it
	// refers to. It may keep snapshots as long as it likes and read them
	// from any goroutine: a later change never shows in an earlier
	// snapshot.
	Progress func(*RunStatus)
}

// Canceler is implemented by backends that can stop a run. Canceling
// stops running steps, runs the exit handler, and leaves nothing behind.
type Canceler interface {
	Cancel(ctx context.Context, runID string) error
}

// Namer is implemented by backends that choose the name the program
// entrypoint selects them by (-backend NAME). Without it the name is the
// last element of the backend type's package path ("argo" for
// *argo.Backend).
type Namer interface {
	Name() string
}

// NameOf returns the name of b: its Name method, or its package's name.
func NameOf(b Backend) string {
	if n, ok := b.(Namer); ok {
		return n.Name()
	}
	t := reflect.TypeOf(b)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	p := t.PkgPath()
	return p[strings.LastIndexByte(p, '/')+1:]
}
