// Package kubeaccess creates the ServiceAccounts, Roles and RoleBindings
// of the steps that have task.Access ([kubepod.Access]) when the argo and
// kubejob backends submit a run. It is internal because it needs
// client-go, which package kubepod does not import.
package kubeaccess

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/sluice-ml/sluice/backends/kubepod"
)

// Ensure makes the objects of a exist as a has them, in order
// (ServiceAccounts, Roles, RoleBindings), so that a step's pod never
// starts before its account and rights do. A missing object is created.
// An existing ServiceAccount is left as it is; an existing Role gets a's
// rules and an existing RoleBinding a's subjects, so a step whose Access
// changed between runs has the new rights, no more and no fewer; a
// RoleBinding of that name bound to another Role is an error (its role is
// immutable). Every object must have its namespace set (see
// [kubepod.Access.InNamespace]). Transient API errors are retried
// ([kubepod.Retry]). backend names the backend in errors.
//
// Creating a Role needs the rights it grants, or the escalate verb, in
// its namespace: a Forbidden error says so, and that a person who has
// them may apply the compiled RBAC instead.
func Ensure(ctx context.Context, client kubernetes.Interface, backend string, a *kubepod.Access) error {
	if a == nil {
		return nil
	}
	for _, sa := range a.ServiceAccounts {
		err := kubepod.Retry(ctx, func() error {
			_, err := client.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		})
		if err != nil {
			return failed(backend, "ServiceAccount", sa.Namespace, sa.Name, err)
		}
	}
	for _, r := range a.Roles {
		roles := client.RbacV1().Roles(r.Namespace)
		err := kubepod.Retry(ctx, func() error {
			_, err := roles.Create(ctx, r, metav1.CreateOptions{})
			if !apierrors.IsAlreadyExists(err) {
				return err
			}
			cur, err := roles.Get(ctx, r.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if equality.Semantic.DeepEqual(cur.Rules, r.Rules) {
				return nil
			}
			cur.Rules = r.Rules
			_, err = roles.Update(ctx, cur, metav1.UpdateOptions{})
			return err // a conflict is transient: read it again
		})
		if err != nil {
			return failed(backend, "Role", r.Namespace, r.Name, err)
		}
	}
	for _, rb := range a.RoleBindings {
		rbs := client.RbacV1().RoleBindings(rb.Namespace)
		var elsewhere error
		err := kubepod.Retry(ctx, func() error {
			_, err := rbs.Create(ctx, rb, metav1.CreateOptions{})
			if !apierrors.IsAlreadyExists(err) {
				return err
			}
			cur, err := rbs.Get(ctx, rb.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cur.RoleRef != rb.RoleRef {
				elsewhere = &boundElsewhere{cur.RoleRef} // not retried: it stays so
				return nil
			}
			if equality.Semantic.DeepEqual(cur.Subjects, rb.Subjects) {
				return nil
			}
			cur.Subjects = rb.Subjects
			_, err = rbs.Update(ctx, cur, metav1.UpdateOptions{})
			return err
		})
		if err == nil {
			err = elsewhere
		}
		if err != nil {
			return failed(backend, "RoleBinding", rb.Namespace, rb.Name, err)
		}
	}
	return nil
}

// boundElsewhere is the error of a RoleBinding that exists with another
// role.
type boundElsewhere struct{ ref rbacv1.RoleRef }

func (e *boundElsewhere) Error() string {
	return fmt.Sprintf("it exists and binds %s %q, and a RoleBinding's role cannot change; delete it, or rename the step", e.ref.Kind, e.ref.Name)
}

func failed(backend, kind, ns, name string, err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%s: create the %s %s/%s of a step with task.Access: %w; creating a step's ServiceAccount, Role and RoleBinding "+
			"needs the right to create (and update) them in namespace %q, and to grant the Role's rules (hold them, or the escalate verb): "+
			"have someone who may apply them from \"prog compile -backend %s\"", backend, kind, ns, name, err, ns, backend)
	}
	return fmt.Errorf("%s: create the %s %s/%s of a step with task.Access: %w", backend, kind, ns, name, err)
}
