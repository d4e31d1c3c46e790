package artifact

import (
	"context"
	"errors"
	"os"
	"path/filepath"
)

// Scope is what a running task's artifacts need: the store they go to,
// the step attempt that writes them, and a local directory for downloads
// and scratch files. Executors put it into the task's context with
// [NewContext]; tasks never build one.
type Scope struct {
	Store    *Store
	Producer Producer
	// Dir holds downloaded artifacts ([Artifact.Path]), shared by digest
	// between tasks of the same machine. Empty means a directory under
	// the temporary directory.
	Dir string
}

type scopeKey struct{}

// NewContext returns ctx carrying sc, for the task's context. For backend
// authors: every executor of Go tasks calls it before invoking a task.
func NewContext(ctx context.Context, sc Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, &sc)
}

// FromContext returns the scope the executor put into ctx.
func FromContext(ctx context.Context) (Scope, bool) {
	sc, ok := ctx.Value(scopeKey{}).(*Scope)
	if !ok || sc == nil {
		return Scope{}, false
	}
	return *sc, true
}

// errNoScope is returned by writes in a context no executor prepared.
var errNoScope = errors.New("no artifact store in this context: artifacts are written by a task that a Sluice backend runs (in a test, use pipelinetest or artifact.NewContext)")

func scopeOf(ctx context.Context) (*Scope, error) {
	sc, ok := ctx.Value(scopeKey{}).(*Scope)
	if !ok || sc == nil || sc.Store == nil {
		return nil, errNoScope
	}
	return sc, nil
}

func (sc *Scope) downloads() string {
	if sc != nil && sc.Dir != "" {
		return sc.Dir
	}
	return filepath.Join(os.TempDir(), "sluice-artifacts")
}
