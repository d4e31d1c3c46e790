package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/sluice-ml/sluice/pipeline"
)

func init() {
	pipeline.RegisterCommand(pipeline.Command{
		Name:  "serve",
		Usage: "-model URI [-digest sha256:…] [-version V] [-format sluice-go] [-predictor NAME] [-addr 127.0.0.1:8080]",
		Short: "serve a model with a Go predictor the program registered (serve.Register), until interrupted",
		Run:   serveCommand,
	})
}

// serveCommand is "prog serve": it serves the model at -model with the
// registered predictor -predictor (the only one, if there is one) on
// -addr, until the program is interrupted (SIGINT, SIGTERM), then
// drains.
func serveCommand(ctx context.Context, env *pipeline.CommandEnv, args []string) int {
	fset := env.FlagSet()
	uri := fset.String("model", "", "the URI of the model's bytes: file:///…, s3://…, gs://…, azblob://… (required)")
	digest := fset.String("digest", "", `the model's digest, "sha256:…": the bytes are checked against it (default: not checked)`)
	version := fset.String("version", "", "the model's version, shown in its metadata and metrics")
	format := fset.String("format", string(GoModel), "the model's format; this command serves "+string(GoModel)+" models")
	name := fset.String("predictor", "", "the registered predictor that serves the model (default: the only one registered)")
	addr := fset.String("addr", "127.0.0.1:8080", "the address to listen on; :8080 for every interface (in a container)")
	grace := fset.Duration("shutdown-timeout", 25*time.Second, "how long an interrupt waits for the requests in flight")
	drain := fset.Duration("drain-delay", 0, "how long an interrupt keeps serving while the server reports not ready")
	quiet := fset.Bool("q", false, "log only errors")
	if code, ok := env.Parse(fset, args); !ok {
		return code
	}
	usage := func(format string, args ...any) int {
		fmt.Fprintf(env.Stderr, "%s: "+format+"\n", append([]any{env.Prog}, args...)...)
		return pipeline.ExitInvalid
	}
	if *uri == "" {
		return usage("-model is required: the URI of the model to serve, e.g. -model file:///models/churn.json")
	}
	if Format(*format) != GoModel {
		return usage("-format %s: this command serves %s models, with a Go predictor the program registered; a %s model is served by its KServe runtime (see serve.Target)", *format, GoModel, *format)
	}
	names := registered()
	switch {
	case len(names) == 0:
		return usage("no predictor is registered: call serve.Register(serve.Predictor{…}) in the program (before pipeline.Main)")
	case *name == "" && len(names) > 1:
		return usage("-predictor is required: the program registers %s", strings.Join(names, ", "))
	case *name == "":
		*name = names[0]
	}
	newServer, ok := registeredServer(*name)
	if !ok {
		return usage("-predictor %s: no such predictor; the program registers %s", *name, strings.Join(names, ", "))
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelError
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
	m := Model{URI: *uri, Digest: *digest, Format: GoModel, Version: *version}
	srv, err := newServer(m, &Options{ShutdownTimeout: *grace, DrainDelay: *drain, Logger: log})
	if err != nil {
		return usage("%v", err)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v (is another server on %s? pick another -addr)\n", env.Prog, err, *addr)
		return pipeline.ExitFailed
	}
	fmt.Fprintf(env.Stdout, "serving model %s from %s on http://%s/ (try it in a browser; interrupt to stop)\n", srv.Name(), *uri, l.Addr())
	if err := srv.Serve(ctx, l); err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", env.Prog, err)
		return pipeline.ExitFailed
	}
	return pipeline.ExitOK
}
