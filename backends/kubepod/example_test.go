package kubepod_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// A backend builds each step's pod with Spec, passing the task-mode
// arguments as it wants them in the pod: here the step's own input.
func ExampleSpec() {
	p := pipeline.New("demo", nil)
	train := task.New("train", func(context.Context, struct{ LR float64 }) (float64, error) { return 0, nil }).
		WithResources(resources.Profile{CPU: "1", Memory: "2Gi", SharedMemory: "1Gi"}).
		WithTimeout(time.Minute)
	pipeline.Add(p, train, struct{ LR float64 }{0.1})
	plan, err := p.Plan(nil)
	if err != nil {
		log.Fatal(err)
	}
	s := &plan.Steps[0]
	opts := &kubepod.Options{Image: "registry.example/prog:v1", Command: []string{"/ko-app/prog"}}
	pod, err := kubepod.Spec(opts, s, kubepod.Invocation{Step: s.Name, Input: `{"LR":0.1}`})
	if err != nil {
		log.Fatal(err)
	}
	out, err := kubepod.Render(pod)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	// Output:
	// activeDeadlineSeconds: 60
	// automountServiceAccountToken: false
	// containers:
	// - args:
	//   - task
	//   - -step
	//   - train
	//   - -input
	//   - '{"LR":0.1}'
	//   command:
	//   - /ko-app/prog
	//   env:
	//   - name: SLUICE_TERMINATION_LOG
	//     value: /dev/termination-log
	//   image: registry.example/prog:v1
	//   name: main
	//   resources:
	//     limits:
	//       memory: 2Gi
	//     requests:
	//       cpu: "1"
	//       memory: 2Gi
	//   securityContext:
	//     allowPrivilegeEscalation: false
	//     capabilities:
	//       drop:
	//       - ALL
	//     runAsNonRoot: true
	//     seccompProfile:
	//       type: RuntimeDefault
	//   terminationMessagePath: /dev/termination-log
	//   volumeMounts:
	//   - mountPath: /dev/shm
	//     name: dshm
	// restartPolicy: Never
	// securityContext:
	//   runAsNonRoot: true
	//   seccompProfile:
	//     type: RuntimeDefault
	// volumes:
	// - emptyDir:
	//     medium: Memory
	//     sizeLimit: 1Gi
	//   name: dshm
}
