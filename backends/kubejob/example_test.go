package kubejob_test

import (
	"context"
	"fmt"
	"log"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

type prepOut struct{ Rows int }

type trainInput struct {
	Data pipeline.Ref[prepOut]
	LR   float64
}

func Example() {
	p := pipeline.New("churn", nil)
	data := pipeline.Add(p, task.New("prep", func(context.Context, struct{}) (prepOut, error) {
		return prepOut{Rows: 10}, nil
	}), struct{}{})
	pipeline.Add(p, task.New("train", func(_ context.Context, in trainInput) (float64, error) {
		return in.LR, nil
	}), trainInput{Data: data.Output(), LR: 0.01})

	b := kubejob.New(nil, &kubejob.Options{Pod: kubepod.Options{Image: "registry.example/churn:v1"}, RunID: "churn-1"})
	art, err := pipeline.Compile(context.Background(), p, b, &pipeline.CompileOptions{
		// BeforeEmit reaches the Jobs before they are rendered.
		BeforeEmit: func(as func(any) bool) error {
			var jobs []*batchv1.Job
			if !as(&jobs) {
				return fmt.Errorf("expected Jobs")
			}
			for _, j := range jobs {
				j.Spec.Template.Spec.PriorityClassName = "batch-low"
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, doc := range art.Documents() {
		var obj struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			log.Fatal(err)
		}
		fmt.Println(obj.Kind, obj.Metadata.Name)
	}
	var jobs []*batchv1.Job
	art.As(&jobs)
	fmt.Println(jobs[1].Spec.Template.Spec.Containers[0].Args)
	// Output:
	// ServiceAccount churn-orchestrator
	// Role churn-orchestrator
	// RoleBinding churn-orchestrator
	// Job churn-1-prep
	// Job churn-1-train
	// [task -step train -input {"Data":${prep},"LR":0.01} -output-file /dev/termination-log]
}
