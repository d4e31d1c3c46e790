package kubepod_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-ml/sluice/backends/kubepod"
)

func TestTransient(t *testing.T) {
	jobs := schema.GroupResource{Group: "batch", Resource: "jobs"}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{apierrors.NewInternalError(errors.New("etcd leader changed")), true},
		{apierrors.NewServiceUnavailable("apiserver restarting"), true},
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewServerTimeout(jobs, "create", 1), true},
		{apierrors.NewTimeoutError("request did not complete", 0), true},
		{apierrors.NewConflict(jobs, "x", errors.New("modified")), true},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{fmt.Errorf("create Job: %w", apierrors.NewInternalError(errors.New("x"))), true},
		{apierrors.NewForbidden(jobs, "x", errors.New("rbac")), false},
		{apierrors.NewUnauthorized("token expired"), false},
		{apierrors.NewInvalid(schema.GroupKind{Group: "batch", Kind: "Job"}, "x", nil), false},
		{apierrors.NewBadRequest("bad"), false},
		{apierrors.NewNotFound(jobs, "x"), false},
		{apierrors.NewRequestEntityTooLargeError("too large"), false},
		{context.Canceled, false},
		{fmt.Errorf("list: %w", context.DeadlineExceeded), false},
		{errors.Join(apierrors.NewInternalError(errors.New("x")), apierrors.NewForbidden(jobs, "x", errors.New("rbac"))), false},
	} {
		assert.Equal(t, tc.want, kubepod.Transient(tc.err), "%v", tc.err)
	}
}
