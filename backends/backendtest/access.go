package backendtest

import (
	"context"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// AccessNamespace is the other namespace the "deploy" step of [Access]
// may write to.
const AccessNamespace = "sluice-prod"

// AccessRules are the rules of the "deploy" step of [Access]: in the
// run's namespace (Access[0]) it reads ConfigMaps, in AccessNamespace
// (Access[1]) it applies and watches Deployments and Services.
var AccessRules = []task.Access{
	{Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}},
	}},
	{Namespace: AccessNamespace, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch", "create", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"services"}, ResourceNames: []string{"model"}, Verbs: []string{"get", "patch"}},
	}},
}

type accessTargets struct {
	Targets []string `json:"targets"`
}

type accessReport struct {
	Done pipeline.Ref[[]string] `json:"done"`
}

type accessIn struct {
	Target pipeline.Ref[string] `json:"target"`
}

// Access returns a pipeline of Go tasks whose "deploy" step, a dynamic
// fan-out over the targets "plan" lists, uses the Kubernetes API as
// AccessRules say; "plan" and "report" do not. Its backends need the
// run's namespace (Options.Pod.Namespace) at compile time, since
// "deploy" names another one.
func Access() *pipeline.Pipeline {
	p := pipeline.New("access", nil)
	plan := pipeline.Add(p, task.New("plan", func(ctx context.Context, _ none) (accessTargets, error) {
		return accessTargets{Targets: []string{"a", "b"}}, nil
	}), none{})
	deploy := pipeline.ForEach(p, task.New("deploy", func(ctx context.Context, in accessIn) (string, error) {
		return "deployed " + in.Target.Get(), nil
	}).WithAccess(AccessRules...), pipeline.Field[[]string](plan.Output(), "Targets"), func(t pipeline.Ref[string]) accessIn {
		return accessIn{Target: t}
	})
	pipeline.Add(p, task.New("report", func(ctx context.Context, in accessReport) (int, error) {
		return len(in.Done.Get()), nil
	}), accessReport{Done: deploy.Collect()})
	return p
}
