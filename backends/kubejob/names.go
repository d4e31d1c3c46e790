package kubejob

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/internal/field"
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

// jobNames returns the Job name of every step and, as field errors, every
// step whose Job could be confused with another step's Job or with the
// instance or retry Jobs the orchestrator creates for another step
// ("train-0" next to a fan-out "train", "train-r1" next to a step "train"
// whose retries may need Jobs of their own, see retryJobs), which would
// break resuming from cluster state.
func jobNames(run string, steps []*backends.Step) (map[string]string, []*field.Error) {
	names := map[string]string{}
	owner := map[string]*backends.Step{}
	var errs []*field.Error
	for _, s := range steps {
		n := jobName(run, s.Name)
		names[s.Name] = n
		if msgs := validation.IsDNS1123Label(n); len(msgs) > 0 {
			errs = append(errs, field.Invalid(backends.TaskField(s, "name"), s.DisplayName,
				"on kubejob its Job would be named %q, which is not a Kubernetes name (%s); rename the step", n, strings.Join(msgs, "; ")))
			continue
		}
		if o, ok := owner[n]; ok {
			errs = append(errs, field.Duplicate(backends.TaskField(s, "name"), s.DisplayName,
				"on kubejob its Job would be named %q, as step %q's Job is; rename one of them", n, o.DisplayName))
			continue
		}
		owner[n] = s
	}
	// A step s can take o's name only as "<s>-…": the steps named like
	// a prefix of o's name that ends before a '-' are the candidates,
	// looked at in plan order (not every pair: 10k steps are 10^8).
	byName := make(map[string][]int, len(steps))
	for i, s := range steps {
		byName[s.Name] = append(byName[s.Name], i)
	}
	var cands []int
	for _, o := range steps {
		cands = cands[:0]
		for k := 0; k < len(o.Name); k++ {
			if o.Name[k] == '-' {
				cands = append(cands, byName[o.Name[:k]]...)
			}
		}
		slices.Sort(cands)
		for _, i := range cands {
			s := steps[i]
			if o == s {
				continue
			}
			if kind := orchestratorJob(s, o.Name); kind != "" {
				errs = append(errs, field.Duplicate(backends.TaskField(o, "name"), o.DisplayName,
					"on kubejob its Job would have the name of the Job of %s of step %q (%s); rename one of them", kind, s.DisplayName, jobKinds))
				break
			}
		}
	}
	return names, errs
}

const jobKinds = "the orchestrator names instances <step>-<i>, and retries that need a Job of their own <step>-r<k>"

// orchestratorJob says which Job the orchestrator may create for step s
// under the name name ("an instance", "a retry", "a retry of an
// instance"), or "" if none.
func orchestratorJob(s *backends.Step, name string) string {
	rest, ok := strings.CutPrefix(name, s.Name+"-")
	if !ok {
		return ""
	}
	retries := retryJobs(s) > 0
	switch {
	case s.ForEach != nil && digits(rest):
		return "an instance"
	case retries && isRetry(rest):
		return "a retry"
	case retries && s.ForEach != nil:
		i, r, ok := strings.Cut(rest, "-")
		if ok && digits(i) && isRetry(r) {
			return "a retry of an instance"
		}
	}
	return ""
}

func isRetry(s string) bool {
	k, ok := strings.CutPrefix(s, retryPrefix)
	return ok && digits(k)
}

func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// orchestratorJobName is the name of the Job of run's in-cluster
// orchestrator, "sluice-run-<run>", the name of the run's record too.
func orchestratorJobName(run string) string { return naming.Fit(recordPrefix+run, naming.MaxLabel) }
