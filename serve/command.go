package serve

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-ml/sluice/pipeline"
)

func init() {
	pipeline.RegisterCommand(pipeline.Command{
		Name:  "serve",
		Usage: "-model URI [-digest sha256:…] [-version V] [-format sluice-go] [-predictor NAME] [-addr 127.0.0.1:8080] [-prepost=false]",
		Short: "serve a model with a Go predictor the program registered (serve.Register), until interrupted",
		Run:   serveCommand,
	})
	pipeline.RegisterCommand(pipeline.Command{
		Name:  "transform",
		Usage: "-predictor-url URL [-predictor NAME] [-addr :8080]",
		Short: "run a registered Go predictor's Pre and Post in front of its model served elsewhere (a KServe transformer), until interrupted",
		Run:   transformCommand,
	})
}

// The environment of the containers the renderers make: the model's
// artifact, where to listen, whether a transformer runs Pre and Post, and
// the predictor a transformer calls. A flag given on the command line
// wins over its variable.
const (
	envModelURI     = "SLUICE_MODEL_URI"
	envModelDigest  = "SLUICE_MODEL_DIGEST"
	envModelVersion = "SLUICE_MODEL_VERSION"
	envModelFormat  = "SLUICE_MODEL_FORMAT"
	envPort         = "PORT"
	envPrePost      = "SLUICE_PREPOST"
	envPredictorURL = "SLUICE_PREDICTOR_URL"
	envModelName    = "SLUICE_MODEL_NAME"
)

// listenAddr is the default address of a server: every interface on PORT
// when it is set (Knative sets it, and so does the Kubernetes renderer),
// every interface on 8080 in a rendered container (inContainer), else
// 127.0.0.1:8080, for a person at a terminal.
func listenAddr(inContainer bool) string {
	if p := os.Getenv(envPort); p != "" {
		return ":" + p
	}
	if inContainer {
		return ":" + strconv.Itoa(int(PredictorPort))
	}
	return "127.0.0.1:" + strconv.Itoa(int(PredictorPort))
}

// serverFlags are the flags both commands share.
type serverFlags struct {
	name, addr   *string
	grace, drain *time.Duration
	quiet        *bool
}

func addServerFlags(fset *flag.FlagSet, addr string) serverFlags {
	return serverFlags{
		name:  fset.String("predictor", "", "the registered predictor that serves the model (default: the only one registered)"),
		addr:  fset.String("addr", addr, "the address to listen on; :8080 for every interface (in a container; the default there, or :$PORT)"),
		grace: fset.Duration("shutdown-timeout", 25*time.Second, "how long an interrupt waits for the requests in flight"),
		drain: fset.Duration("drain-delay", 0, "how long an interrupt keeps serving while the server reports not ready"),
		quiet: fset.Bool("q", false, "log only errors"),
	}
}

// usageError says what is wrong with a command's arguments.
func usageError(env *pipeline.CommandEnv, format string, args ...any) int {
	fmt.Fprintf(env.Stderr, "%s: "+format+"\n", append([]any{env.Prog}, args...)...)
	return pipeline.ExitInvalid
}

// predictorNamed returns the registered predictor name, or the only one.
func predictorNamed(env *pipeline.CommandEnv, name string) (newServerFunc, string, int) {
	names := registered()
	switch {
	case len(names) == 0:
		return nil, "", usageError(env, "no predictor is registered: call serve.Register(serve.Predictor{…}) in the program (before pipeline.Main)")
	case name == "" && len(names) > 1:
		return nil, "", usageError(env, "-predictor is required: the program registers %s", strings.Join(names, ", "))
	case name == "":
		name = names[0]
	}
	newServer, ok := registeredServer(name)
	if !ok {
		return nil, "", usageError(env, "-predictor %s: no such predictor; the program registers %s", name, strings.Join(names, ", "))
	}
	return newServer, name, 0
}

// serveCommand is "prog serve": it serves the model at -model with the
// registered predictor -predictor (the only one, if there is one) on
// -addr, until the program is interrupted (SIGINT, SIGTERM), then
// drains. In a container the renderers made, the flags come from the
// environment (SLUICE_MODEL_URI and the rest, PORT).
func serveCommand(ctx context.Context, env *pipeline.CommandEnv, args []string) int {
	fset := env.FlagSet()
	uri := fset.String("model", os.Getenv(envModelURI), "the URI of the model's bytes: file:///…, s3://…, gs://…, azblob://… (required; default $"+envModelURI+")")
	digest := fset.String("digest", os.Getenv(envModelDigest), `the model's digest, "sha256:…": the bytes are checked against it (default $`+envModelDigest+`, else not checked)`)
	version := fset.String("version", os.Getenv(envModelVersion), "the model's version, shown in its metadata and metrics (default $"+envModelVersion+")")
	format := fset.String("format", cmpEnv(envModelFormat, string(GoModel)), "the model's format; this command serves "+string(GoModel)+" models")
	name := fset.String("name", os.Getenv(envModelName), "the model's name in the server's paths (default $"+envModelName+", else the predictor's name)")
	prepost := fset.Bool("prepost", os.Getenv(envPrePost) != "false", "run the predictor's Pre and Post; false when a transformer in front runs them ($"+envPrePost+"=false)")
	sf := addServerFlags(fset, listenAddr(os.Getenv(envModelURI) != ""))
	if code, ok := env.Parse(fset, args); !ok {
		return code
	}
	if *uri == "" {
		return usageError(env, "-model is required: the URI of the model to serve, e.g. -model file:///models/churn.json")
	}
	if Format(*format) != GoModel {
		return usageError(env, "-format %s: this command serves %s models, with a Go predictor the program registered; a %s model is served by its KServe runtime (see serve.Target)", *format, GoModel, *format)
	}
	newServer, _, code := predictorNamed(env, *sf.name)
	if newServer == nil {
		return code
	}
	r := roleWhole
	if !*prepost {
		r = roleModel
	}
	m := Model{URI: *uri, Digest: *digest, Format: GoModel, Version: *version}
	srv, err := newServer(r, m, *name, "", sf.options(env.Stderr))
	if err != nil {
		return usageError(env, "%v", err)
	}
	return runServer(ctx, env, srv, *sf.addr, fmt.Sprintf("serving model %s from %s", srv.Name(), *uri))
}

// transformCommand is "prog transform": a KServe transformer (or the
// Kubernetes renderer's sidecar) that runs the registered predictor's
// Pre and Post around the model served by the predictor at
// -predictor-url ("prog serve -prepost=false"), answering the same
// endpoints as "prog serve". It takes the arguments KServe appends to a
// transformer's container: --model_name, --predictor_host (a host name:
// http://HOST is the predictor), --http_port, --protocol, --workers.
func transformCommand(ctx context.Context, env *pipeline.CommandEnv, args []string) int {
	fset := env.FlagSet()
	url := fset.String("predictor-url", "", "the base URL of the predictor serving the model, e.g. http://churn-predictor.prod (default: http://$predictor_host, else $"+envPredictorURL+")")
	version := fset.String("version", os.Getenv(envModelVersion), "the model's version, shown in the metadata (default $"+envModelVersion+")")
	// KServe's arguments.
	host := fset.String("predictor_host", "", "the predictor's host (set by KServe)")
	port := fset.String("http_port", "", "the port to listen on, on every interface (set by KServe)")
	name := fset.String("name", os.Getenv(envModelName), "the model's name in the paths, here and the predictor's (default $"+envModelName+", else --model_name, else the predictor's name)")
	modelName := fset.String("model_name", "", "the InferenceService's name (set by KServe)")
	protocol := fset.String("protocol", string(ProtocolV2), "the predictor's protocol (set by KServe): v1 or v2; both are served")
	fset.Int("workers", 0, "the container's concurrency (set by KServe; Go serves requests concurrently anyway)")
	addr := listenAddr(true)
	sf := addServerFlags(fset, addr)
	if code, ok := env.Parse(fset, args); !ok {
		return code
	}
	if *port != "" && !flagSet(fset, "addr") {
		*sf.addr = ":" + *port
	}
	switch {
	case *url != "":
	case *host != "":
		*url = "http://" + *host
	default:
		*url = os.Getenv(envPredictorURL)
	}
	if *url == "" {
		return usageError(env, "-predictor-url is required: the base URL of the predictor serving the model (prog serve -prepost=false), e.g. -predictor-url http://127.0.0.1:8081")
	}
	if !strings.HasPrefix(*url, "http://") && !strings.HasPrefix(*url, "https://") {
		return usageError(env, "-predictor-url %s: give an http:// or https:// URL", *url)
	}
	if p := Protocol(*protocol); p != ProtocolV1 && p != ProtocolV2 {
		return usageError(env, "--protocol %s: the predictor speaks %s or %s", *protocol, ProtocolV1, ProtocolV2)
	}
	newServer, _, code := predictorNamed(env, *sf.name)
	if newServer == nil {
		return code
	}
	if *name == "" {
		*name = *modelName
	}
	m := Model{URI: *url, Format: GoModel, Version: *version}
	srv, err := newServer(roleTransformer, m, *name, *url, sf.options(env.Stderr))
	if err != nil {
		return usageError(env, "%v", err)
	}
	return runServer(ctx, env, srv, *sf.addr, fmt.Sprintf("transforming for model %s served at %s", srv.Name(), *url))
}

func (sf serverFlags) options(stderr io.Writer) *Options {
	level := slog.LevelInfo
	if *sf.quiet {
		level = slog.LevelError
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return &Options{ShutdownTimeout: *sf.grace, DrainDelay: *sf.drain, Logger: log}
}

// runServer serves srv on addr until ctx ends; what says what it serves.
func runServer(ctx context.Context, env *pipeline.CommandEnv, srv *Server, addr, what string) int {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v (is another server on %s? pick another -addr)\n", env.Prog, err, addr)
		return pipeline.ExitFailed
	}
	fmt.Fprintf(env.Stdout, "%s on http://%s/ (try it in a browser; interrupt to stop)\n", what, l.Addr())
	if err := srv.Serve(ctx, l); err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", env.Prog, err)
		return pipeline.ExitFailed
	}
	return pipeline.ExitOK
}

// cmpEnv is the variable name's value, or def when it is empty.
func cmpEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// flagSet reports whether the flag name was given.
func flagSet(fset *flag.FlagSet, name string) bool {
	set := false
	fset.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
