package serve

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-ml/sluice/artifact"
)

// ModelVersion is one version of a registered model: where its bytes
// are, how good it measured, and which run made it.
type ModelVersion struct {
	// Name is the registered model's name, a DNS-1123 label.
	Name string `json:"name"`
	// Version numbers a model's versions from 1, in registration order.
	Version int `json:"version"`
	// Model is the version's bytes and format; Model.Version is "v" and
	// Version once registered.
	Model Model `json:"model"`
	// Metrics are the version's measured numbers, by name ("auc",
	// "logloss"): what a promotion gate compares.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Source is the step that made the model: pipeline, run and step.
	Source artifact.Producer `json:"source"`
	// Created is when it was registered.
	Created time.Time `json:"created"`
	// Note says what changed, for people.
	Note string `json:"note,omitempty"`
}

// String names the version: "churn v3".
func (v ModelVersion) String() string { return fmt.Sprintf("%s v%d", v.Name, v.Version) }

// Release records that a target at a level serves a model version from
// then on: the deploy step writes one after each rollout that
// succeeded, so a target's releases are its history, and the last is
// what it serves (its live version).
type Release struct {
	// Target and Level are the serving target's name and level.
	Target string `json:"target"`
	Level  Level  `json:"level"`
	// Seq numbers a target's releases at a level from 1.
	Seq int `json:"seq"`
	// Model and Version are the registered model version served.
	Model   string `json:"model"`
	Version int    `json:"version"`
	// Time is when the rollout finished.
	Time time.Time `json:"time"`
	// Run is the run that deployed it, if a run did.
	Run string `json:"run,omitempty"`
	// Note is the change note.
	Note string `json:"note,omitempty"`
	// Endpoint is where the release is served.
	Endpoint string `json:"endpoint,omitempty"`
	// Objects are the Kubernetes objects applied, as JSON, so that a
	// later rollout that fails can restore them; none for the local
	// target.
	Objects []json.RawMessage `json:"objects,omitempty"`
}

// Registry keeps model versions and releases. [NewRegistry] returns the
// one that lives in an artifact store; another registry (MLflow's model
// registry, say) can stand behind the same interface. Implementations are
// safe for concurrent use, also by several processes at once.
type Registry interface {
	// Register adds v as the next version of model v.Name and returns it
	// with Version, Created and Model.Version set. Registering bytes (a
	// digest) registered before returns the version registered then, with
	// its metrics and source: a retried step, or a run that trains the
	// same model again, makes no new version.
	Register(ctx context.Context, v ModelVersion) (ModelVersion, error)
	// Version returns version n of model name, or an error wrapping
	// ErrNotFound.
	Version(ctx context.Context, name string, n int) (ModelVersion, error)
	// Versions returns model name's versions, oldest first.
	Versions(ctx context.Context, name string) ([]ModelVersion, error)
	// Models returns the registered models' names, sorted.
	Models(ctx context.Context) ([]string, error)
	// Release records r as target r.Target's next release at r.Level and
	// returns it with Seq (and Time, when zero) set.
	Release(ctx context.Context, r Release) (Release, error)
	// Live returns the last release of target at level, and false when
	// it has none.
	Live(ctx context.Context, target string, level Level) (Release, bool, error)
	// Releases returns target's releases at level, oldest first.
	Releases(ctx context.Context, target string, level Level) ([]Release, error)
	// LiveReleases returns the last release of every target at every
	// level, by level (promotion order) then target.
	LiveReleases(ctx context.Context) ([]Release, error)
}

// ErrNotFound is wrapped by the errors of a registry lookup that finds
// nothing.
var ErrNotFound = errors.New("not found")

// NewRegistry returns the registry kept in store's records (see
// artifact.Store.CreateRecord): it works wherever the store does, locally
// and in clusters, with no further service. Its layout:
//
//	registry/models/NAME/000001.json          a ModelVersion
//	registry/releases/LEVEL/TARGET/000001.json  a Release
//
// Numbers are taken with conditional creates, so two runs registering
// at once get two versions, never one overwritten.
func NewRegistry(store *artifact.Store) Registry { return &storeRegistry{s: store, now: time.Now} }

type storeRegistry struct {
	s   *artifact.Store
	now func() time.Time
}

// dnsLabelRE is a DNS-1123 label: model and target names become Kubernetes
// names and labels.
var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func checkName(what, name string) error {
	if !dnsLabelRE.MatchString(name) {
		return fmt.Errorf("serve: %s %q is not a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63", what, name)
	}
	return nil
}

func checkLevel(l Level) error {
	if !slices.Contains(Levels, l) {
		return fmt.Errorf("serve: level %q is not one of %v", l, Levels)
	}
	return nil
}

// maxTakes bounds the attempts to take a number that others take too.
const maxTakes = 20

func seqKey(prefix string, n int) string { return fmt.Sprintf("%s%06d.json", prefix, n) }

// seqs returns the numbers of the records under prefix.
func (r *storeRegistry) seqs(ctx context.Context, prefix string) ([]int, error) {
	keys, err := r.s.Records(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, k := range keys {
		rest := strings.TrimSuffix(strings.TrimPrefix(k, prefix), ".json")
		if n, err := strconv.Atoi(rest); err == nil && n > 0 && !strings.Contains(rest, "/") {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// take writes the record doc(n) at the next free number under prefix.
func (r *storeRegistry) take(ctx context.Context, prefix string, doc func(n int) ([]byte, error)) (int, error) {
	for range maxTakes {
		ns, err := r.seqs(ctx, prefix)
		if err != nil {
			return 0, err
		}
		n := 1
		if len(ns) > 0 {
			n = ns[len(ns)-1] + 1
		}
		b, err := doc(n)
		if err != nil {
			return 0, err
		}
		err = r.s.CreateRecord(ctx, seqKey(prefix, n), b)
		if errors.Is(err, artifact.ErrRecordExists) {
			continue // another writer took n
		}
		return n, err
	}
	return 0, fmt.Errorf("serve: registry: could not take a number under %s in %d attempts: too many writers at once", prefix, maxTakes)
}

func modelsPrefix(name string) string { return "registry/models/" + name + "/" }

func releasesPrefix(target string, l Level) string {
	return "registry/releases/" + string(l) + "/" + target + "/"
}

func (r *storeRegistry) Register(ctx context.Context, v ModelVersion) (ModelVersion, error) {
	if err := checkName("model name", v.Name); err != nil {
		return v, err
	}
	if v.Model.URI == "" {
		return v, fmt.Errorf("serve: register %s: the model has no URI; register a model artifact a step wrote", v.Name)
	}
	vs, err := r.Versions(ctx, v.Name)
	if err != nil {
		return v, err
	}
	for _, old := range vs {
		if v.Model.Digest != "" && old.Model.Digest == v.Model.Digest && old.Model.Format == v.Model.Format {
			return old, nil
		}
	}
	if v.Created.IsZero() {
		v.Created = r.now().UTC().Truncate(time.Second)
	}
	n, err := r.take(ctx, modelsPrefix(v.Name), func(n int) ([]byte, error) {
		v.Version = n
		v.Model.Version = "v" + strconv.Itoa(n)
		return json.Marshal(v)
	})
	if err != nil {
		return v, fmt.Errorf("serve: register %s: %w", v.Name, err)
	}
	v.Version, v.Model.Version = n, "v"+strconv.Itoa(n)
	return v, nil
}

func (r *storeRegistry) Version(ctx context.Context, name string, n int) (ModelVersion, error) {
	var v ModelVersion
	if err := checkName("model name", name); err != nil {
		return v, err
	}
	b, err := r.s.ReadRecord(ctx, seqKey(modelsPrefix(name), n))
	if errors.Is(err, artifact.ErrNoRecord) {
		return v, fmt.Errorf("serve: model %s has no version %d: %w", name, n, ErrNotFound)
	}
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("serve: model %s v%d: damaged record: %w", name, n, err)
	}
	return v, nil
}

func (r *storeRegistry) Versions(ctx context.Context, name string) ([]ModelVersion, error) {
	if err := checkName("model name", name); err != nil {
		return nil, err
	}
	ns, err := r.seqs(ctx, modelsPrefix(name))
	if err != nil {
		return nil, err
	}
	out := make([]ModelVersion, 0, len(ns))
	for _, n := range ns {
		v, err := r.Version(ctx, name, n)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (r *storeRegistry) Models(ctx context.Context) ([]string, error) {
	keys, err := r.s.Records(ctx, "registry/models/")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, k := range keys {
		name, _, ok := strings.Cut(strings.TrimPrefix(k, "registry/models/"), "/")
		if ok && (len(names) == 0 || names[len(names)-1] != name) {
			names = append(names, name)
		}
	}
	return names, nil
}

func (r *storeRegistry) Release(ctx context.Context, rel Release) (Release, error) {
	if err := checkName("target name", rel.Target); err != nil {
		return rel, err
	}
	if err := checkLevel(rel.Level); err != nil {
		return rel, err
	}
	if rel.Time.IsZero() {
		rel.Time = r.now().UTC().Truncate(time.Second)
	}
	n, err := r.take(ctx, releasesPrefix(rel.Target, rel.Level), func(n int) ([]byte, error) {
		rel.Seq = n
		return json.Marshal(rel)
	})
	if err != nil {
		return rel, fmt.Errorf("serve: release of %s at %s: %w", rel.Target, rel.Level, err)
	}
	rel.Seq = n
	return rel, nil
}

func (r *storeRegistry) Live(ctx context.Context, target string, level Level) (Release, bool, error) {
	rels, err := r.releases(ctx, target, level, true)
	if err != nil || len(rels) == 0 {
		return Release{}, false, err
	}
	return rels[0], true, nil
}

func (r *storeRegistry) Releases(ctx context.Context, target string, level Level) ([]Release, error) {
	return r.releases(ctx, target, level, false)
}

// releases reads target's releases at level, or only the last one.
func (r *storeRegistry) releases(ctx context.Context, target string, level Level, last bool) ([]Release, error) {
	if err := checkName("target name", target); err != nil {
		return nil, err
	}
	if err := checkLevel(level); err != nil {
		return nil, err
	}
	prefix := releasesPrefix(target, level)
	ns, err := r.seqs(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if last && len(ns) > 0 {
		ns = ns[len(ns)-1:]
	}
	out := make([]Release, 0, len(ns))
	for _, n := range ns {
		b, err := r.s.ReadRecord(ctx, seqKey(prefix, n))
		if err != nil {
			return nil, err
		}
		var rel Release
		if err := json.Unmarshal(b, &rel); err != nil {
			return nil, fmt.Errorf("serve: release %d of %s at %s: damaged record: %w", n, target, level, err)
		}
		out = append(out, rel)
	}
	slices.SortFunc(out, func(a, b Release) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

func (r *storeRegistry) LiveReleases(ctx context.Context) ([]Release, error) {
	var out []Release
	for _, l := range Levels {
		keys, err := r.s.Records(ctx, "registry/releases/"+string(l)+"/")
		if err != nil {
			return nil, err
		}
		var targets []string
		for _, k := range keys {
			t, _, ok := strings.Cut(strings.TrimPrefix(k, "registry/releases/"+string(l)+"/"), "/")
			if ok && (len(targets) == 0 || targets[len(targets)-1] != t) {
				targets = append(targets, t)
			}
		}
		for _, t := range targets {
			rel, ok, err := r.Live(ctx, t, l)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, rel)
			}
		}
	}
	return out, nil
}
