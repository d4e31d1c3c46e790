package backendtest

import (
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// GreetIn and GreetOut are the interface of the container task of
// [OutputPlaceholder].
type (
	GreetIn struct {
		Name  string `json:"name"`
		Times int    `json:"times"`
	}
	GreetOut struct {
		Greeting string `json:"greeting"`
	}
)

// GreetScript is the shell script of [OutputPlaceholder]'s task: it writes
// "hello NAME xTIMES" to the file $3, which $OUT names too, and prints the
// path it wrote ("wrote PATH"). It does not create the file's directory:
// every backend has made it when the command starts.
const GreetScript = `printf 'hello %s x%s' "$1" "$2" > "$3" && test "$3" = "$OUT" && echo "wrote $3"`

// OutputPlaceholder returns a pipeline of one container task, "greet",
// run with /bin/sh from image, that writes its output to the path its
// {{outputs.Field}} placeholders render to, passed as an argument (by
// JSON name) and in the environment (by Go name). Its output is
// {"greeting":"hello world x2"}.
func OutputPlaceholder(image string) *pipeline.Pipeline {
	greet := task.Container[GreetIn, GreetOut]("greet", image).
		WithCommand("/bin/sh", "-c", GreetScript, "sh").
		WithArgs("{{.Name}}", "{{.times}}", "{{outputs.greeting}}").
		WithEnv("OUT", "{{outputs.Greeting}}")
	p := pipeline.New("output-placeholder", nil)
	pipeline.Add(p, greet, GreetIn{Name: "world", Times: 2})
	return p
}

// Security returns a pipeline of three container tasks run with /bin/sh
// from image: "plain" without a security override, "uid" with a non-root
// user, groups and a read-only root filesystem (which passes Pod
// Security "restricted"), and "root" running as root (which needs
// "baseline"). Each writes its output to its {{outputs.Field}} path.
func Security(image string) *pipeline.Pipeline {
	write := task.Container[GreetIn, GreetOut]("plain", image).
		WithCommand("/bin/sh", "-c", GreetScript, "sh").
		WithArgs("{{.Name}}", "{{.Times}}", "{{outputs.greeting}}").
		WithEnv("OUT", "{{outputs.greeting}}")
	p := pipeline.New("security", nil)
	pipeline.Add(p, write, GreetIn{Name: "plain", Times: 1})
	pipeline.Add(p, write.WithName("uid").WithSecurity(task.Security{
		RunAsUser: ptr[int64](1000), RunAsGroup: ptr[int64](3000), FSGroup: ptr[int64](2000),
		SupplementalGroups: []int64{4000}, ReadOnlyRootFilesystem: ptr(true),
	}), GreetIn{Name: "uid", Times: 1})
	pipeline.Add(p, write.WithName("root").WithSecurity(task.Security{RunAsUser: ptr[int64](0)}), GreetIn{Name: "root", Times: 1})
	return p
}

func ptr[T any](v T) *T { return &v }
