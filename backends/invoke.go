package backends

import "slices"

// The task-invocation protocol: how a backend runs one Go task of a
// pipeline program inside a container. Every pipeline program ends with
// pipeline.Main, so the user's image holding that program also understands:
//
//	prog task -step NAME [-input JSON | -input-file PATH] [-output-file PATH]
//
// The program rebuilds its pipeline, finds the step NAME (the Plan's
// Step.Name), decodes the input (a JSON document: the step's Input with
// every ref already resolved by the backend; "{}" when neither flag is
// given), runs the task once and writes its output as JSON to PATH
// (default [DefaultOutputFile]), creating parent directories. Exit status:
//
//   - 0: the task succeeded and its output was written;
//   - 1: the task returned an error, printed on stderr (an application
//     failure: it consumes the App retry budget);
//   - 2: the invocation was wrong (unknown step, undecodable input, output
//     not writable), printed on stderr.
//
// The environment variable TRACEPARENT, when set, carries the trace context
// of the run into the task (W3C Trace Context).
const (
	// InvokeCommand is the subcommand that runs one task.
	InvokeCommand = "task"
	// DefaultOutputFile is where the output goes without -output-file.
	DefaultOutputFile = "/tmp/sluice/output.json"
	// TerminationLog is the Kubernetes termination message file; a backend
	// that reads outputs from the pod status passes it as -output-file.
	TerminationLog = "/dev/termination-log"
)

// InvokeArgs returns the arguments (after the program name) that run step
// with the given resolved input and output file. Empty outputFile means the
// default.
func InvokeArgs(step, input, outputFile string) []string {
	args := []string{InvokeCommand, "-step", step, "-input", input}
	if outputFile != "" {
		args = append(args, "-output-file", outputFile)
	}
	return slices.Clip(args)
}
