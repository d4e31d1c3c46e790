package artifact

import (
	"context"
	"fmt"
	"io"
	"strings"

	"gocloud.dev/gcerrors"
)

// OpenObject returns a reader of the object at key, a key as [Store.List]
// gives it (<pipeline>/<run>/<step>[/<instance>]/<name>). It is for
// tools that look at a run after the fact ("prog hpo -run ID"), which
// know an artifact by its place in the layout and not by its
// description: unlike [Artifact.Open], nothing checks the bytes against
// a digest, which only the description holds. Steps read their inputs
// with Artifact.Open.
func (s *Store) OpenObject(ctx context.Context, key string) (io.ReadCloser, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "..") {
		return nil, fmt.Errorf("artifact store %s: %q is not an object key", s.root, key)
	}
	b, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	r, err := b.NewReader(ctx, s.prefix+key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("artifact store %s: no object %s", s.root, key)
		}
		return nil, fmt.Errorf("artifact store %s: %s: %w", s.root, key, err)
	}
	return r, nil
}
