package serve

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// A role is what a server of a registered predictor does.
type role int

const (
	// roleWhole runs Pre, the model and Post: "prog serve".
	roleWhole role = iota
	// roleModel runs the model only, behind a transformer that runs Pre
	// and Post: "prog serve" with SLUICE_PREPOST=false, as the renderers
	// set it when a target has a Transformer.
	roleModel
	// roleTransformer runs Pre and Post around the model served at a
	// URL, by a server in roleModel: "prog transform".
	roleTransformer
)

// as returns p as a server in role r needs it, named name ("" keeps
// p's); predictorURL is the base URL of the predictor a transformer
// calls, which serves the model under the same name.
func (p Predictor[In, Out]) as(r role, name, predictorURL string, client *http.Client) Predictor[In, Out] {
	if name != "" {
		p.Name = name
	}
	switch r {
	case roleModel:
		p.Pre, p.Post = nil, nil
	case roleTransformer:
		fn := remote[In, Out](client, predictorURL, p.Name)
		p.Load = func(context.Context, Model) (Func[In, Out], error) { return fn, nil }
	}
	return p
}

// maxRemoteBytes bounds a predictor's answer to a transformer.
const maxRemoteBytes = 64 << 20

// remote returns a Func that predicts by calling the predictor named name
// at base with KServe's v1 protocol, one instance per call. The
// predictor's own errors come back with its status: a 400 stays the
// client's, a 503 says the predictor is not ready.
func remote[In, Out any](client *http.Client, base, name string) Func[In, Out] {
	endpoint := strings.TrimSuffix(base, "/") + "/v1/models/" + name + ":predict"
	return func(ctx context.Context, in In) (Out, error) {
		var out Out
		body, err := json.Marshal(struct {
			Instances []In `json:"instances"`
		}{[]In{in}})
		if err != nil {
			return out, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return out, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return out, &httpError{code: http.StatusBadGateway, reason: "predictor",
				msg: fmt.Sprintf("model %s: calling the predictor: %v", name, err)}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxRemoteBytes))
		if err != nil {
			return out, &httpError{code: http.StatusBadGateway, reason: "predictor",
				msg: fmt.Sprintf("model %s: reading the predictor's answer: %v", name, err)}
		}
		if resp.StatusCode != http.StatusOK {
			var e errorBody
			_ = json.Unmarshal(b, &e)
			msg := cmp.Or(e.Error, strings.TrimSpace(string(b)), resp.Status)
			switch resp.StatusCode {
			case http.StatusBadRequest:
				return out, &httpError{code: http.StatusBadRequest, reason: "input", msg: msg}
			case http.StatusServiceUnavailable:
				return out, &httpError{code: http.StatusServiceUnavailable, reason: "not_ready",
					msg: fmt.Sprintf("model %s: the predictor is not ready: %s", name, msg)}
			}
			return out, &httpError{code: http.StatusBadGateway, reason: "predictor",
				msg: fmt.Sprintf("model %s: the predictor at %s answered %s: %s", name, endpoint, resp.Status, msg)}
		}
		var r struct {
			Predictions []json.RawMessage `json:"predictions"`
		}
		if err := json.Unmarshal(b, &r); err != nil || len(r.Predictions) != 1 {
			return out, &httpError{code: http.StatusBadGateway, reason: "predictor",
				msg: fmt.Sprintf("model %s: the predictor at %s answered no single prediction: %.200s", name, endpoint, b)}
		}
		if err := json.Unmarshal(r.Predictions[0], &out); err != nil {
			return out, &httpError{code: http.StatusBadGateway, reason: "predictor",
				msg: fmt.Sprintf("model %s: the predictor's prediction does not decode: %v", name, err)}
		}
		return out, nil
	}
}

// transformClient is the client a transformer calls its predictor with.
var transformClient = &http.Client{
	Timeout: 5 * time.Minute,
	Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	},
}
