package kubepod

import (
	"context"
	"errors"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Transient reports whether a failed API call may succeed when it is made
// again: trouble on the server's side (500, 503, 504, 429, timeouts),
// conflicts with concurrent writers, and failures of the connection
// itself. An error that describes the request (invalid, bad request,
// forbidden, unauthorized, not found, too large, method not supported,
// not acceptable) or a canceled or expired context is not: making the
// same call again cannot help. Nil is not transient, and errors joined
// with errors.Join are transient only if every one of them is.
func Transient(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs := j.Unwrap()
		for _, e := range errs {
			if !Transient(e) {
				return false
			}
		}
		return len(errs) > 0
	}
	switch {
	case err == nil:
		return false
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsForbidden(err),
		apierrors.IsUnauthorized(err), apierrors.IsNotFound(err), apierrors.IsRequestEntityTooLargeError(err),
		apierrors.IsMethodNotSupported(err), apierrors.IsNotAcceptable(err), apierrors.IsUnsupportedMediaType(err),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return true
}

// retryBackoff spaces Retry's calls: 10ms, doubling, with 10% jitter;
// wait.Backoff ends it once the next wait would pass Cap, so there are at
// most 8 calls, about 2.5s apart in all.
var retryBackoff = wait.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 12, Cap: 2 * time.Second}

// Retry calls f until it returns nil or an error that is not [Transient],
// or 8 calls failed, waiting between calls with exponential backoff (10ms
// doubling to 1.28s, about 2.5s in all); it returns f's last error, or
// ctx's error when ctx is done while it waits. f must be idempotent: a
// call whose response was lost may have taken effect. Safe for concurrent
// use.
func Retry(ctx context.Context, f func() error) error {
	b := retryBackoff
	var err error
	for b.Steps > 0 {
		if err = f(); err == nil || !Transient(err) || b.Steps == 1 {
			return err
		}
		t := time.NewTimer(b.Step())
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return err
}
