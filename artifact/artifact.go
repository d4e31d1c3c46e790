package artifact

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"
)

// Kind says what an artifact holds. It travels in the artifact's JSON and
// is set by the Go type that carries it ([Dataset], [Model], …).
type Kind string

// The kinds of artifacts.
const (
	KindDataset Kind = "dataset"
	KindModel   Kind = "model"
	KindMetrics Kind = "metrics"
	KindFile    Kind = "file"
	// KindDir is a directory tree, stored as one tar archive so that it is
	// written atomically and has one digest.
	KindDir Kind = "dir"
	// KindValue is a step output that was too large to travel in-band and
	// was stored by the SDK (see [Promote]); users never declare it.
	KindValue Kind = "value"
)

func (k Kind) known() bool {
	switch k {
	case KindDataset, KindModel, KindMetrics, KindFile, KindDir, KindValue:
		return true
	}
	return false
}

// Artifact describes bytes in an artifact store: where they are, how many,
// their SHA-256 digest, and who produced them. It is what travels between
// steps — in-band, as JSON, a few hundred bytes whatever the size of the
// bytes — and what a step's output records. The bytes themselves are read
// with [Artifact.Open] or [Artifact.Path], which check the digest.
//
// Users hold artifacts through the typed forms [Dataset], [Model],
// [Metrics], [File] and [Dir], which fix the Kind.
type Artifact struct {
	// Kind is set by the typed form when the artifact is written.
	Kind Kind `json:"kind"`
	// URI is where the bytes are:
	// <root>/<pipeline>/<run>/<step>[/<instance>]/<name>, where root is
	// the run's artifact store (see [Open]).
	URI string `json:"uri"`
	// Digest is "sha256:" and the hex SHA-256 of the bytes.
	Digest string `json:"digest"`
	// Size is the number of bytes.
	Size int64 `json:"size"`
	// MediaType is the bytes' media type, "application/octet-stream" when
	// the writer gave none.
	MediaType string `json:"mediaType,omitempty"`
	// Producer is the run and step that wrote it.
	Producer Producer `json:"producer"`
	// Created is when the write completed, in UTC.
	Created time.Time `json:"created"`
	// Metadata is the writer's own: a framework, a metric, a schema
	// version (see [Meta]).
	Metadata map[string]string `json:"metadata,omitempty"`

	// local is a file or directory to upload when the task returns
	// (see [Local]).
	local string
}

// Producer names the step attempt that wrote an artifact.
type Producer struct {
	Pipeline string `json:"pipeline"`
	Run      string `json:"run"`
	Step     string `json:"step"`
	// Instance is the fan-out instance's index, for a fan-out's steps.
	Instance *int `json:"instance,omitempty"`
	// Attempt counts from 1; 0 when the backend did not say.
	Attempt int `json:"attempt,omitempty"`
}

// IsZero reports whether a is the zero Artifact: a field that was never
// set.
func (a Artifact) IsZero() bool {
	return a.URI == "" && a.Digest == "" && a.local == "" && a.Kind == ""
}

// Pending reports whether a names a local file or directory that is
// uploaded when the task returns (see [Local]).
func (a Artifact) Pending() bool { return a.local != "" && a.URI == "" }

// String returns the URI, or the pending local path.
func (a Artifact) String() string {
	if a.Pending() {
		return "local:" + a.local
	}
	return a.URI
}

// clone returns a copy of a that shares nothing with it.
func (a Artifact) clone() Artifact {
	a.Metadata = maps.Clone(a.Metadata)
	if a.Producer.Instance != nil {
		i := *a.Producer.Instance
		a.Producer.Instance = &i
	}
	return a
}

// MarshalJSON encodes a. A pending artifact (see [Local]) cannot be
// encoded: it has no bytes in the store yet.
func (a Artifact) MarshalJSON() ([]byte, error) {
	if a.Pending() {
		return nil, fmt.Errorf("artifact %s is not uploaded: a local path is uploaded when the task that made it returns it in its output", a)
	}
	type plain Artifact
	return json.Marshal(plain(a))
}

// marshalKind encodes a with kind k, the kind its typed form fixes.
func (a Artifact) marshalKind(k Kind) ([]byte, error) {
	if !a.IsZero() {
		a.Kind = k
	}
	return a.MarshalJSON()
}

// Typed is the set of typed artifact forms. Generic functions such as
// [Write] and [Local] return one of them.
type Typed interface {
	Dataset | Model | Metrics | File | Dir
}

// Dataset is an artifact holding data: a table, a shard, a split.
type Dataset struct{ Artifact }

// Model is an artifact holding a trained model. Put the framework and
// format in its metadata ([Meta]), e.g. "framework": "xgboost".
type Model struct{ Artifact }

// Metrics is an artifact holding evaluation results, typically JSON.
type Metrics struct{ Artifact }

// File is an artifact holding any single file.
type File struct{ Artifact }

// Dir is an artifact holding a directory tree (a tar archive in the
// store; [Artifact.Path] unpacks it).
type Dir struct{ Artifact }

// MarshalJSON encodes d with kind "dataset".
func (d Dataset) MarshalJSON() ([]byte, error) { return d.marshalKind(KindDataset) }

// MarshalJSON encodes m with kind "model".
func (m Model) MarshalJSON() ([]byte, error) { return m.marshalKind(KindModel) }

// MarshalJSON encodes m with kind "metrics".
func (m Metrics) MarshalJSON() ([]byte, error) { return m.marshalKind(KindMetrics) }

// MarshalJSON encodes f with kind "file".
func (f File) MarshalJSON() ([]byte, error) { return f.marshalKind(KindFile) }

// MarshalJSON encodes d with kind "dir".
func (d Dir) MarshalJSON() ([]byte, error) { return d.marshalKind(KindDir) }

// kindOf returns the kind a typed form fixes.
func kindOf[T Typed]() Kind {
	var t T
	switch any(t).(type) {
	case Dataset:
		return KindDataset
	case Model:
		return KindModel
	case Metrics:
		return KindMetrics
	case Dir:
		return KindDir
	}
	return KindFile
}

// typed returns a in its typed form T, with T's kind.
func typed[T Typed](a Artifact) T {
	a.Kind = kindOf[T]()
	return T(struct{ Artifact }{a})
}
