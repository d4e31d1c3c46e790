package main

// How the quickstart's data sets and models travel between steps: as
// artifacts in the run's store (package artifact), of which only a few
// hundred bytes of description — URI, size, digest, metadata — cross a
// step boundary. The bytes are plain JSON: a data set is JSON lines, one
// row {"x": [...], "y": 0|1} a line; a model is the JSON of Model. JSON
// writes every float64 so that it reads back exactly, so a step computes
// on the very numbers its upstream step produced.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/sluice-ml/sluice/artifact"
)

// Media type and metadata of the quickstart's artifacts.
const (
	mediaJSONL = "application/jsonl"
	// framework is the model's "framework" metadata: what can load it.
	framework = "sluice-logreg"
)

// row is one line of a data set artifact.
type row struct {
	X []float64 `json:"x"`
	Y int       `json:"y"`
}

// writeDataset writes d as the data set artifact name of the running
// step: JSON lines, with its row and feature counts as metadata.
func writeDataset(ctx context.Context, name string, d Dataset) (artifact.Dataset, error) {
	nf := 0
	if d.Len() > 0 {
		nf = len(d.X[0])
	}
	return artifact.Write[artifact.Dataset](ctx, name, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		enc := json.NewEncoder(bw)
		for i, x := range d.X {
			if err := enc.Encode(row{X: x, Y: d.Y[i]}); err != nil {
				return err
			}
		}
		return bw.Flush()
	}, artifact.MediaType(mediaJSONL),
		artifact.Meta("rows", strconv.Itoa(d.Len())),
		artifact.Meta("features", strconv.Itoa(nf)))
}

// readDataset reads the data set artifact a, checked against its digest.
func readDataset(ctx context.Context, a artifact.Dataset) (Dataset, error) {
	r, err := a.Open(ctx)
	if err != nil {
		return Dataset{}, err
	}
	defer r.Close()
	var d Dataset
	if n, err := strconv.Atoi(a.Metadata["rows"]); err == nil && n > 0 {
		d.X, d.Y = make([][]float64, 0, n), make([]int, 0, n)
	}
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var rw row
		if err := dec.Decode(&rw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return Dataset{}, fmt.Errorf("data set %s, row %d: %w", a.URI, d.Len()+1, err)
		}
		d.X, d.Y = append(d.X, rw.X), append(d.Y, rw.Y)
	}
	return d, nil
}

// writeModel writes m as the model artifact "model" of the running trial,
// with its framework and hyperparameters as metadata.
func writeModel(ctx context.Context, m Model, hp HParams) (artifact.Model, error) {
	return artifact.WriteJSON[artifact.Model](ctx, "model", m,
		artifact.Meta("framework", framework),
		artifact.Meta("learningRate", strconv.FormatFloat(hp.LearningRate, 'g', -1, 64)),
		artifact.Meta("l2", strconv.FormatFloat(hp.L2, 'g', -1, 64)),
		artifact.Meta("epochs", strconv.Itoa(hp.Epochs)),
		artifact.Meta("batchSize", strconv.Itoa(hp.BatchSize)))
}

// readModel reads the model artifact a, checked against its digest.
func readModel(ctx context.Context, a artifact.Model) (Model, error) {
	if f := a.Metadata["framework"]; f != framework {
		return Model{}, fmt.Errorf("model %s: framework %q; want %q", a.URI, f, framework)
	}
	var m Model
	if err := a.ReadJSON(ctx, &m); err != nil {
		return Model{}, err
	}
	return m, nil
}
