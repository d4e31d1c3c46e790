package kubejob

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/internal/naming"
)

// retryPrefix starts the last part of the name of a retry's Job:
// "<run>-<step>-r1" is the step's first.
const retryPrefix = "r"

// runID returns the run id: the given one, which must be a DNS-1123 label,
// or the placeholder "<pipeline>-run".
func runID(pipeline, given string) (string, error) {
	if given == "" {
		return naming.Fit(pipeline+"-run", naming.MaxLabel), nil
	}
	if errs := validation.IsDNS1123Label(given); len(errs) > 0 {
		return "", fmt.Errorf("kubejob: run id %q: %s", given, strings.Join(errs, "; "))
	}
	return given, nil
}

// orchestratorName is the name of the orchestrator's ServiceAccount, Role
// and RoleBinding.
func orchestratorName(pipeline, given string) string {
	if given != "" {
		return given
	}
	return naming.Fit(pipeline+"-orchestrator", naming.MaxLabel)
}

// jobName is the name of a Job of run: "<run>-<part>-<part>…", fitted to
// 63 characters with a short stable hash of the whole name when longer
// (a Job's name is also the value of its pods' job-name label, which
// must be a 63-character label).
//
//	jobName(run, step)             the step's Job
//	jobName(run, step, "3")        instance 3 of a dynamic fan-out
//	jobName(run, step, "r1")       the Job of the step's first retry
//	jobName(run, step, "3", "r1")  the same for instance 3
func jobName(run string, parts ...string) string {
	return naming.Fit(run+"-"+strings.Join(parts, "-"), naming.MaxLabel)
}

// jobNames returns the Job name of every step and checks that no step's
// Job can be confused with the instance or retry Jobs the orchestrator
// creates for another step ("train-0" next to a fan-out "train",
// "train-r1" next to a step "train" whose retries may need Jobs of their
// own, see retryJobs), which would break resuming from cluster state.
func jobNames(run string, steps []*backends.Step) (map[string]string, error) {
	names := map[string]string{}
	owner := map[string]string{}
	for _, s := range steps {
		n := jobName(run, s.Name)
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
			return nil, fmt.Errorf("kubejob: step %q: job name %q: %s", s.Name, n, strings.Join(errs, "; "))
		}
		if o, ok := owner[n]; ok {
			return nil, unsupported(s, "its Job name %q is also the name of step %q's Job", n, o)
		}
		owner[n] = s.Name
		names[s.Name] = n
	}
	for _, s := range steps {
		var pats []string
		if s.ForEach != nil {
			pats = append(pats, `[0-9]+`)
		}
		if retryJobs(s) > 0 {
			pats = append(pats, retryPrefix+`[0-9]+`)
			if s.ForEach != nil {
				pats = append(pats, `[0-9]+-`+retryPrefix+`[0-9]+`)
			}
		}
		if len(pats) == 0 {
			continue
		}
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(s.Name) + `-(` + strings.Join(pats, "|") + `)$`)
		for _, o := range steps {
			if o != s && re.MatchString(o.Name) {
				return nil, unsupported(o, "its Job name would collide with a Job the orchestrator creates for step %q (instances are <step>-<i>, retries that need a Job of their own <step>-r<k>); rename one of them", s.Name)
			}
		}
	}
	return names, nil
}

// orchestratorJobName is the name of the Job of run's in-cluster
// orchestrator, "sluice-run-<run>", the name of the run's record too.
func orchestratorJobName(run string) string { return naming.Fit(recordPrefix+run, naming.MaxLabel) }
