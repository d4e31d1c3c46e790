package local

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-ml/sluice/backends"
)

const instrumentationName = "github.com/sluice-ml/sluice/backends/local"

// telemetry starts the spans of local runs, through the OpenTelemetry API
// only.
type telemetry struct{ tracer trace.Tracer }

func newTelemetry(tp trace.TracerProvider) telemetry {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return telemetry{tracer: tp.Tracer(instrumentationName)}
}

// startRun starts the span of a whole run, "sluice.local.run".
func (t telemetry) startRun(ctx context.Context, pipeline, runID string) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, "sluice.local.run", trace.WithAttributes(
		attribute.String("sluice.pipeline", pipeline),
		attribute.String("sluice.run_id", runID),
	))
}

func (t telemetry) endRun(span trace.Span, phase backends.Phase) {
	span.SetAttributes(attribute.String("sluice.phase", string(phase)))
	if phase != backends.PhaseSucceeded {
		span.SetStatus(codes.Error, "run "+string(phase))
	}
	span.End()
}

// startAttempt starts the span of one attempt of a step (or of instance
// inst of a fan-out), "sluice.local.attempt".
func (t telemetry) startAttempt(ctx context.Context, step string, inst, n int) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{
		attribute.String("sluice.step", step),
		attribute.Int("sluice.attempt", n),
	}
	if inst >= 0 {
		attrs = append(attrs, attribute.Int("sluice.instance", inst))
	}
	return t.tracer.Start(ctx, "sluice.local.attempt", trace.WithAttributes(attrs...))
}

// endAttempt ends an attempt's span; a failed attempt records its error
// and the budget it consumed as "sluice.reason".
func (t telemetry) endAttempt(span trace.Span, phase backends.Phase, reason backends.Reason, err error) {
	span.SetAttributes(attribute.String("sluice.phase", string(phase)))
	if reason != "" {
		span.SetAttributes(attribute.String("sluice.reason", string(reason)))
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, string(phase))
	}
	span.End()
}

// attemptSpan starts the span of attempt n of step (instance inst of a
// fan-out, or -1) when the run's span records, and returns ctx and a nil
// span otherwise, at no cost: without a TracerProvider (the global one
// until the application installs one) no span records, and with the SDK's
// samplers the children of a span that does not record do not either.
func (r *run) attemptSpan(ctx context.Context, step string, inst, n int) (context.Context, trace.Span) {
	if !r.traced {
		return ctx, nil
	}
	return r.b.tel.startAttempt(ctx, step, inst, n)
}
