package pipeline_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// Identifiers in this file start with "pod" (the checks of what becomes
// the pod: image, command line, environment, output files and types).

// podGo returns a Go task named "go" with output type Out.
func podGo[Out any](name string) task.Task[vCIn, Out] {
	return task.New(name, func(context.Context, vCIn) (Out, error) { var o Out; return o, nil })
}

// podCtr returns a container task named "ctr" with output type Out.
func podCtr[Out any]() task.Task[vCIn, Out] {
	return task.Container[vCIn, Out]("ctr", "registry.example/ctr:1").WithCommand("run")
}

// podWith returns a pipeline with one step made from t.
func podWith[Out any](t task.Task[vCIn, Out]) func() *pipeline.Pipeline {
	return vWithTask(nil, t, vCIn{})
}

type podChan struct {
	Model string   `json:"model"`
	C     chan int `json:"c"`
}
type podFunc struct{ Hook func() }
type podComplex struct{ Z complex128 }
type podMapKey struct{ M map[[2]int]string }
type podDeep struct{ Items []*podFunc }
type podEmbedded struct{ podComplex }
type podOK struct {
	Model string   `json:"model"`
	C     chan int `json:"-"`
	c     chan int //nolint:unused // unexported: encoding/json skips it
	M     map[int]string
	At    time.Time // a json.Marshaler
	Raw   podMarshals
}

// podMarshals holds a func but encodes itself.
type podMarshals struct{ f func() }

func (podMarshals) MarshalJSON() ([]byte, error) { return []byte("null"), nil }

func TestValidateRejectsPod(t *testing.T) {
	const out = task.OutputDir
	long := strings.Repeat("t", 129)
	for _, tc := range []struct {
		name   string
		build  func() *pipeline.Pipeline
		want   []vKey
		detail string // a word the message must hold, such as the fix
	}{
		// Image references (the OCI distribution grammar).
		{"ImageUppercase", podWith(vCtr().WithImage("Registry.example/Train:V1")), []vKey{vk("pipeline.tasks[ctr].image", vInvalid)}, `use "registry.example/train:V1"`},
		{"ImageTrailingSpace", podWith(vCtr().WithImage("registry.example/train:1 ")), []vKey{vk("pipeline.tasks[ctr].image", vInvalid)}, "white space"},
		{"ImageInnerSpace", podWith(vCtr().WithImage("registry.example/my train:1")), []vKey{vk("pipeline.tasks[ctr].image", vInvalid)}, "white space"},
		{"ImageScheme", podWith(vCtr().WithImage("https://registry.example/train:1")), []vKey{vk("pipeline.tasks[ctr].image", vInvalid)}, "no scheme"},
		{"ImageEmptyTag", podWith(vCtr().WithImage("registry.example/train:")), []vKey{vk("pipeline.tasks[ctr].image", vInvalid)}, "[registry[:port]/]repository"},
		{"ImageBadTag", podWith(vCtr().WithImage("registry.example/train:v1!")), []vKey{vk("pipeline.tasks[ctr].image", vInvalid)}, ""},
		{"ImageTagTooLong", podWith(vCtr().WithImage("registry.example/train:" + long)), []vKey{vk("pipeline.tasks[ctr].image", vInvalid)}, ""},
		{"ImageShortDigest", podWith(vCtr().WithImage("registry.example/train@sha256:1234")), []vKey{vk("pipeline.tasks[ctr].image", vInvalid)}, ""},
		{"ImageDigestAlgorithm", podWith(vCtr().WithImage("registry.example/train@md5:d41d8cd98f00b204e9800998ecf8427e")), []vKey{vk("pipeline.tasks[ctr].image", vInvalid)}, ""},
		{"ImageEmptyPathComponent", podWith(vCtr().WithImage("registry.example//train")), []vKey{vk("pipeline.tasks[ctr].image", vInvalid)}, ""},
		{"ImageLeadingDash", podWith(vCtr().WithImage("-train:1")), []vKey{vk("pipeline.tasks[ctr].image", vInvalid)}, ""},
		{"ImageOnlyTag", podWith(vCtr().WithImage(":1")), []vKey{vk("pipeline.tasks[ctr].image", vInvalid)}, ""},
		{"ImageTrailingSlash", podWith(vCtr().WithImage("registry.example/train/")), []vKey{vk("pipeline.tasks[ctr].image", vInvalid)}, ""},
		{"ImageOfGoTask", podWith(podGo[vCOut]("go").WithImage("Team/Train")), []vKey{vk("pipeline.tasks[go].image", vInvalid)}, `use "team/train"`},

		// The command line.
		{"CommandEmptyElement", podWith(vCtr().WithCommand("python", "", "train.py")), []vKey{vk("pipeline.tasks[ctr].command[1]", vInvalid)}, "remove the element"},
		{"ArgsEmptyElement", podWith(vCtr().WithArgs("", "--epochs={{.Epochs}}")), []vKey{vk("pipeline.tasks[ctr].args[0]", vInvalid)}, ""},
		{"CommandAndArgsEmpty", podWith(vCtr().WithCommand("").WithArgs("a", "")), []vKey{vk("pipeline.tasks[ctr].command[0]", vInvalid), vk("pipeline.tasks[ctr].args[1]", vInvalid)}, ""},

		// Environment variables.
		{"EnvNameLeadingDigit", podWith(vCtr().WithEnv("1MODE", "x")), []vKey{vk("pipeline.tasks[ctr].env[0].name", vInvalid)}, `"_1MODE"`},
		{"EnvNameSpace", podWith(vCtr().WithEnv("MY MODE", "x")), []vKey{vk("pipeline.tasks[ctr].env[0].name", vInvalid)}, `"MY_MODE"`},
		{"EnvNameEquals", podWith(vCtr().WithEnv("A=B", "x")), []vKey{vk("pipeline.tasks[ctr].env[0].name", vInvalid)}, ""},
		{"EnvNameUnicode", podWith(vCtr().WithEnv("MODÉ", "x")), []vKey{vk("pipeline.tasks[ctr].env[0].name", vInvalid)}, ""},
		{"EnvNameEmpty", podWith(vCtr().WithEnv("", "x")), []vKey{vk("pipeline.tasks[ctr].env[0].name", vRequired)}, ""},
		{"EnvNameTwice", podWith(vCtr().WithEnv("MODE", "a").WithEnv("SEED", "1").WithEnv("MODE", "b")), []vKey{vk("pipeline.tasks[ctr].env[2].name", vDuplicate)}, "env[0] sets it already"},
		{"EnvNameReserved", podWith(vCtr().WithEnv("SLUICE_RUN_ID", "x")), []vKey{vk("pipeline.tasks[ctr].env[0].name", vForbidden)}, "reserved"},
		{"EnvNameReservedLowercase", podWith(vCtr().WithEnv("sluice_output_dir", "x")), []vKey{vk("pipeline.tasks[ctr].env[0].name", vForbidden)}, ""},
		{"EnvNameBadAndTwice", podWith(vCtr().WithEnv("A B", "1").WithEnv("A B", "2")), []vKey{vk("pipeline.tasks[ctr].env[0].name", vInvalid), vk("pipeline.tasks[ctr].env[1].name", vInvalid), vk("pipeline.tasks[ctr].env[1].name", vDuplicate)}, ""},

		// Output files: one clean absolute file inside OutputDir each.
		{"OutputRelative", podWith(vCtr().WithOutput("Model", "out/model")), []vKey{vk("pipeline.tasks[ctr].outputs[0].path", vInvalid)}, "absolute"},
		{"OutputEmpty", podWith(vCtr().WithOutput("Model", "")), []vKey{vk("pipeline.tasks[ctr].outputs[0].path", vRequired)}, ""},
		{"OutputDotDot", podWith(vCtr().WithOutput("Model", out+"/../../etc/passwd")), []vKey{vk("pipeline.tasks[ctr].outputs[0].path", vInvalid)}, `".."`},
		{"OutputUnclean", podWith(vCtr().WithOutput("Model", out+"/a/./model")), []vKey{vk("pipeline.tasks[ctr].outputs[0].path", vInvalid)}, "clean"},
		{"OutputDoubleSlash", podWith(vCtr().WithOutput("Model", out+"//model")), []vKey{vk("pipeline.tasks[ctr].outputs[0].path", vInvalid)}, ""},
		{"OutputDirectory", podWith(vCtr().WithOutput("Model", out+"/model/")), []vKey{vk("pipeline.tasks[ctr].outputs[0].path", vInvalid)}, "directory"},
		{"OutputOutsideOutputDir", podWith(vCtr().WithOutput("Model", "/out/model")), []vKey{vk("pipeline.tasks[ctr].outputs[0].path", vInvalid)}, `use "/tmp/sluice/outputs/model"`},
		{"OutputIsOutputDir", podWith(vCtr().WithOutput("Model", out)), []vKey{vk("pipeline.tasks[ctr].outputs[0].path", vInvalid)}, ""},
		{"OutputRoot", podWith(vCtr().WithOutput("Model", "/")), []vKey{vk("pipeline.tasks[ctr].outputs[0].path", vInvalid)}, ""},
		{"OutputRelativeDotDot", podWith(vCtr().WithOutput("Model", "../model")), []vKey{vk("pipeline.tasks[ctr].outputs[0].path", vInvalid)}, `absolute path in the container, must not contain ".."`},
		{"OutputsShareFile", podWith(vCtr().WithOutput("Model", out+"/x").WithOutput("Score", out+"/x")), []vKey{vk("pipeline.tasks[ctr].outputs[1].path", vDuplicate)}, ""},
		{"OutputInsideOther", podWith(vCtr().WithOutput("Model", out+"/x").WithOutput("Score", out+"/x/score")), []vKey{vk("pipeline.tasks[ctr].outputs[1].path", vInvalid)}, "directory and a file"},
		{"OutputContainsOther", podWith(vCtr().WithOutput("Model", out+"/x/model").WithOutput("Score", out+"/x")), []vKey{vk("pipeline.tasks[ctr].outputs[1].path", vInvalid)}, ""},

		// Container outputs that cannot be produced.
		{"ContainerOutNumber", podWith(podCtr[float64]()), []vKey{vk("pipeline.tasks[ctr].outputs", vInvalid)}, "must be a struct"},
		{"ContainerOutList", podWith(podCtr[[]string]()), []vKey{vk("pipeline.tasks[ctr].outputs", vInvalid)}, ""},
		{"ContainerOutMap", podWith(podCtr[map[string]int]()), []vKey{vk("pipeline.tasks[ctr].outputs", vInvalid)}, ""},
		{"ContainerOutInterface", podWith(podCtr[any]()), []vKey{vk("pipeline.tasks[ctr].outputs", vInvalid)}, ""},
		{"ContainerOutString", podWith(podCtr[string]()), []vKey{vk("pipeline.tasks[ctr].outputs", vInvalid)}, ""},

		// Output types encoding/json rejects, found from the type.
		{"OutChanField", podWith(podGo[podChan]("go")), []vKey{vk("pipeline.tasks[go].outputType", vInvalid)}, "chan int"},
		{"OutFuncField", podWith(podGo[podFunc]("go")), []vKey{vk("pipeline.tasks[go].outputType", vInvalid)}, "podFunc.Hook"},
		{"OutComplexField", podWith(podGo[podComplex]("go")), []vKey{vk("pipeline.tasks[go].outputType", vInvalid)}, "complex128"},
		{"OutMapKey", podWith(podGo[podMapKey]("go")), []vKey{vk("pipeline.tasks[go].outputType", vInvalid)}, "[key]"},
		{"OutDeep", podWith(podGo[podDeep]("go")), []vKey{vk("pipeline.tasks[go].outputType", vInvalid)}, "podDeep.Items[][].Hook"},
		{"OutEmbedded", podWith(podGo[podEmbedded]("go")), []vKey{vk("pipeline.tasks[go].outputType", vInvalid)}, ""},
		{"OutChan", podWith(podGo[chan int]("go")), []vKey{vk("pipeline.tasks[go].outputType", vInvalid)}, ""},
		{"OutFunc", podWith(podGo[func() error]("go")), []vKey{vk("pipeline.tasks[go].outputType", vInvalid)}, ""},
		{"OutComplexList", podWith(podGo[[]complex64]("go")), []vKey{vk("pipeline.tasks[go].outputType", vInvalid)}, ""},
		{"ContainerOutChanField", podWith(podCtr[podChan]()), []vKey{vk("pipeline.tasks[ctr].outputType", vInvalid)}, ""},

		// Did you mean, for field names and placeholders.
		{"PlaceholderTypo", podWith(vCtr().WithArgs("--data={{.Dta}}")), []vKey{vk("pipeline.tasks[ctr].args[0]", vNotFound)}, `did you mean "Data"?`},
		{"PlaceholderGoNameTypo", podWith(vCtr().WithCommand("run", "{{.Epoch}}")), []vKey{vk("pipeline.tasks[ctr].command[1]", vNotFound)}, `did you mean "Epochs"?`},
		{"EnvPlaceholderTypo", podWith(vCtr().WithEnv("DATA", "{{.data_}}")), []vKey{vk("pipeline.tasks[ctr].env[0].value", vNotFound)}, `did you mean "data"?`},
		{"OutputFieldTypo", podWith(vCtr().WithOutput("modle", out+"/m")), []vKey{vk("pipeline.tasks[ctr].outputs[2].field", vNotFound)}, `did you mean "model"?`},
		{"CacheExcludeTypo", podWith(vCtr().WithCache(task.Cache{Enabled: true, ExcludeInputs: []string{"epoch"}})), []vKey{vk("pipeline.tasks[ctr].cache.excludeInputs[0]", vNotFound)}, `did you mean "epochs"?`},
		{"RefFieldTypo", func() *pipeline.Pipeline {
			p, a := vOne(nil)
			pipeline.Add(p, vTask("b"), vIn{Score: pipeline.Field[float64](a.Output(), "acuracy")})
			return p
		}, []vKey{vk("pipeline.tasks[b].input.Score", vInvalid)}, `did you mean "accuracy"?`},
		{"RefFieldGoNameTypo", func() *pipeline.Pipeline {
			p, a := vOne(nil)
			pipeline.Add(p, vTask("b"), vIn{Name: pipeline.Field[string](a.Output(), "Modle")})
			return p
		}, []vKey{vk("pipeline.tasks[b].input.Name", vInvalid)}, `did you mean "Model"?`},
		{"PlaceholderNoSuggestion", podWith(vCtr().WithArgs("{{.Zzzzzz}}")), []vKey{vk("pipeline.tasks[ctr].args[0]", vNotFound)}, "has no exported field of that name"},

		// Every mistake of one task in one pass.
		{"AllAtOnce", podWith(vCtr().WithImage("Bad Image").WithCommand("").WithEnv("1X", "").WithOutput("Model", "rel")), []vKey{
			vk("pipeline.tasks[ctr].image", vInvalid),
			vk("pipeline.tasks[ctr].command[0]", vInvalid),
			vk("pipeline.tasks[ctr].env[0].name", vInvalid),
			vk("pipeline.tasks[ctr].outputs[0].path", vInvalid),
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.build().Validate()
			assert.Equal(t, tc.want, vKeys(err), "%v", err)
			if tc.detail != "" && err != nil {
				assert.Contains(t, err.Error(), tc.detail)
			}
		})
	}
}

func TestValidateAcceptsPod(t *testing.T) {
	const out = task.OutputDir
	for _, tc := range []struct {
		name  string
		build func() *pipeline.Pipeline
	}{
		{"ImageShortName", podWith(vCtr().WithImage("alpine"))},
		{"ImageTag", podWith(vCtr().WithImage("python:3.12-slim"))},
		{"ImagePortAndPath", podWith(vCtr().WithImage("registry.example:5000/team/sub/train:1.2.3"))},
		{"ImageDigest", podWith(vCtr().WithImage("ghcr.io/a/b@sha256:" + strings.Repeat("ab", 32)))},
		{"ImageTagAndDigest", podWith(vCtr().WithImage("ghcr.io/a/b:v1@sha256:" + strings.Repeat("0f", 32)))},
		{"ImageUppercaseTag", podWith(vCtr().WithImage("registry.example/train:V1"))},
		{"GoTaskWithoutImage", podWith(podGo[vCOut]("go"))},
		{"EnvNamesKubernetesAllows", podWith(vCtr().WithEnv("my.var-1", "x").WithEnv("_X", "{{.Data}}"))},
		{"OutputsNested", podWith(vCtr().WithOutput("Model", out+"/m/model").WithOutput("Score", out+"/s/score"))},
		{"OutputPrefixNotDirectory", podWith(vCtr().WithOutput("Model", out+"/x").WithOutput("Score", out+"/xy"))},
		{"ContainerOutPointerToStruct", podWith(podCtr[*vCOut]())},
		{"ContainerOutEmptyStruct", podWith(podCtr[struct{}]())},
		{"OutEncodable", podWith(podGo[podOK]("go"))},
		{"OutRawMessage", podWith(podGo[json.RawMessage]("go"))},
		{"OutInterface", podWith(podGo[any]("go"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.NoError(t, tc.build().Validate())
		})
	}
}
