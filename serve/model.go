package serve

import "github.com/sluice-ml/sluice/artifact"

// Level is a service level: development, staging or production. Each
// level has a namespace of its own by default, and the pods of one level
// never share a node with another level's.
type Level string

// The service levels, from the least to the most guarded.
const (
	Dev     Level = "dev"
	Staging Level = "staging"
	Prod    Level = "prod"
)

// Levels lists the service levels in promotion order.
var Levels = []Level{Dev, Staging, Prod}

// Format is the format of a served model, named as KServe names model
// formats, or [GoModel] for a model the program's own Go predictor
// serves.
type Format string

// Model formats.
const (
	SKLearn     Format = "sklearn"
	XGBoost     Format = "xgboost"
	LightGBM    Format = "lightgbm"
	TensorFlow  Format = "tensorflow"
	PyTorch     Format = "pytorch"
	ONNX        Format = "onnx"
	Triton      Format = "triton"
	HuggingFace Format = "huggingface"
	// GoModel is a model served by the program's own Go predictor
	// ([Predictor]), run by the same binary as the pipeline's tasks.
	GoModel Format = "sluice-go"
)

// Model is the model a target serves: where its bytes are, their digest
// and their format. Make one from an upstream step's artifact.Model with
// [ModelFrom].
type Model struct {
	// URI is where the model is: s3://…, gs://…, file://….
	URI string `json:"uri"`
	// Digest is the SHA-256 digest of the model's bytes, "sha256:…".
	Digest string `json:"digest,omitempty"`
	// Format is the model's format.
	Format Format `json:"format"`
	// Version is the model's version in the registry, "" until it is
	// registered.
	Version string `json:"version,omitempty"`
}

// ModelFrom returns the Model of an artifact.Model in format f.
func ModelFrom(m artifact.Model, f Format) Model {
	return Model{URI: m.URI, Digest: m.Digest, Format: f}
}
