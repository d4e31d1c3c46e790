package hpo

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/pipeline"
)

// Scale is how a searched field's values are laid out on a plot's axis.
type Scale string

const (
	// Linear is a numeric range: Float, FloatStep, Int and IntStep.
	Linear Scale = "linear"
	// Log is a log-uniform range: LogFloat and LogInt.
	Log Scale = "log"
	// Categorical is a Choice: its values at equally spaced positions.
	Categorical Scale = "categorical"
)

// DimInfo describes a searched field of a [Result], for plots.
type DimInfo struct {
	// Name is the field's JSON name: its key in Trial.Params' JSON and
	// its column in the CSV.
	Name string `json:"name"`
	// Scale is how its values are laid out.
	Scale Scale `json:"scale"`
	// Choices are a Choice's values, as JSON, in order.
	Choices []json.RawMessage `json:"choices,omitempty"`
	// When is the condition of a conditional field (Dim.When): the
	// trials where it does not hold did not search it.
	When *WhenInfo `json:"when,omitempty"`
}

// WhenInfo is the condition of a conditional field: it is searched when
// the Choice Field holds one of Values.
type WhenInfo struct {
	// Field is the parent Choice's JSON name.
	Field string `json:"field"`
	// Values are the parent's values that make the field searched, as
	// JSON, in the Choice's order.
	Values []json.RawMessage `json:"values"`
}

// holds reports whether w holds in a trial whose flattened params are
// row (nil w always holds).
func (w *WhenInfo) holds(row map[string]json.RawMessage) bool {
	if w == nil {
		return true
	}
	v := compact(row[w.Field])
	for _, x := range w.Values {
		if compact(x) == v {
			return true
		}
	}
	return false
}

// Files are a search's report, artifacts of its result step (see "Looking
// at results" in the package doc). Each is zero when it was not written.
type Files struct {
	// CSV is trials.csv, the trials as [Result.WriteCSV] writes them.
	CSV artifact.File `json:"csv,omitzero"`
	// JSON is trials.json, the Result as JSON (with Files.JSON zero).
	JSON artifact.File `json:"json,omitzero"`
	// SVG and PNG are plot.svg and plot.png, as [Result.Plot] draws them.
	SVG artifact.File `json:"svg,omitzero"`
	PNG artifact.File `json:"png,omitzero"`
	// PlotError says why the plots were not drawn, if they were not.
	PlotError string `json:"plotError,omitempty"`
}

// The names of the report's artifacts.
const (
	CSVName  = "trials.csv"
	JSONName = "trials.json"
	SVGName  = "plot.svg"
	PNGName  = "plot.png"
)

// dimInfos describes the searched fields of sp.
func dimInfos(sp *spacePlan) []DimInfo {
	var out []DimInfo
	for _, d := range sp.searchedDims() {
		info := DimInfo{Name: d.name, Scale: Linear}
		if d.conditional() {
			parent := &sp.dims[d.parent]
			info.When = &WhenInfo{Field: parent.name}
			for _, i := range d.when {
				info.When.Values = append(info.When.Values, jsonValue(parent, i))
			}
		}
		switch d.dim.kind {
		case dimLogFloat, dimLogInt:
			info.Scale = Log
		case dimChoice:
			info.Scale = Categorical
			for i := range d.dim.values {
				if b := jsonValue(d, i); b != nil {
					info.Choices = append(info.Choices, b)
				}
			}
		}
		out = append(out, info)
	}
	return out
}

// jsonValue returns value i of the finite dimension d as JSON, or nil
// when it is invalid (Validate reported it).
func jsonValue(d *dimPlan, i int) json.RawMessage {
	v, err := d.at(i)
	if err != nil {
		return nil
	}
	b, err := json.Marshal(v.Interface())
	if err != nil {
		b = []byte(strconv.Quote(fmt.Sprint(v.Interface())))
	}
	return b
}

// writeFiles stores the report of res as artifacts of the step running
// in ctx and records them in res.Files. Without an artifact store in ctx
// it does nothing. A plot that cannot be drawn is said in
// Files.PlotError; a store that fails is the step's error.
func writeFiles(ctx context.Context, res interface {
	WriteCSV(io.Writer) error
	Plot(io.Writer, string) error
	files() *Files
}) error {
	if sc, ok := artifact.FromContext(ctx); !ok || sc.Store == nil {
		return nil
	}
	f := res.files()
	var err error
	if f.CSV, err = artifact.Write[artifact.File](ctx, CSVName, res.WriteCSV, artifact.MediaType("text/csv")); err != nil {
		return fmt.Errorf("storing the trials as CSV: %w", err)
	}
	for _, p := range []struct {
		name, format, media string
		to                  *artifact.File
	}{{SVGName, "svg", "image/svg+xml", &f.SVG}, {PNGName, "png", "image/png", &f.PNG}} {
		// Drawn first in memory: a plot that fails leaves no artifact.
		var buf bytes.Buffer
		if perr := res.Plot(&buf, p.format); perr != nil {
			f.PlotError = perr.Error()
			break
		}
		if *p.to, err = artifact.Write[artifact.File](ctx, p.name, func(w io.Writer) error {
			_, err := w.Write(buf.Bytes())
			return err
		}, artifact.MediaType(p.media)); err != nil {
			return fmt.Errorf("storing the plot: %w", err)
		}
	}
	if f.JSON, err = artifact.WriteJSON[artifact.File](ctx, JSONName, res, artifact.MediaType("application/json")); err != nil {
		return fmt.Errorf("storing the trials as JSON: %w", err)
	}
	return nil
}

func (r *Result[P, Out]) files() *Files { return &r.Files }

// param is one leaf of a trial's hyperparameters as JSON: its dotted key
// and its JSON value.
type param struct {
	key string
	val json.RawMessage
}

// flatten returns the leaves of the JSON document raw in document order,
// nested objects' keys dotted under prefix. A document that is not an
// object is one leaf, named prefix ("params").
func flatten(raw json.RawMessage, prefix string) []param {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return []param{{key: cmp.Or(prefix, "params"), val: raw}}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil
	}
	var out []param
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out
		}
		if prefix != "" {
			key = prefix + "." + key
		}
		if bytes.HasPrefix(bytes.TrimSpace(v), []byte("{")) && !bytes.Equal(bytes.TrimSpace(v), []byte("{}")) {
			out = append(out, flatten(v, key)...)
			continue
		}
		out = append(out, param{key: key, val: v})
	}
	return out
}

// flatTrials returns every trial's flattened hyperparameters, and the
// keys of all of them in the order they first appear (P's field order).
func (r Result[P, Out]) flatTrials() (keys []string, rows []map[string]json.RawMessage) {
	seen := map[string]bool{}
	rows = make([]map[string]json.RawMessage, len(r.Trials))
	for i, t := range r.Trials {
		raw, err := json.Marshal(t.Params)
		if err != nil {
			raw, _ = json.Marshal(fmt.Sprint(t.Params))
		}
		rows[i] = map[string]json.RawMessage{}
		for _, p := range flatten(raw, "") {
			rows[i][p.key] = p.val
			if !seen[p.key] {
				seen[p.key] = true
				keys = append(keys, p.key)
			}
		}
	}
	return keys, rows
}

// text is a JSON value as a cell: a string unquoted, null empty, anything
// else its compact JSON.
func text(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	var b bytes.Buffer
	if json.Compact(&b, v) == nil {
		return b.String()
	}
	return string(v)
}

// column is a column of the CSV and the table before the
// hyperparameters. A new field of Trial is one more line in
// trialColumns.
type column[P, Out any] struct {
	name string
	cell func(t *Trial[P, Out], short bool) string
}

func trialColumns[P, Out any]() []column[P, Out] {
	return []column[P, Out]{
		{"id", func(t *Trial[P, Out], _ bool) string { return strconv.Itoa(t.ID) }},
		{"round", func(t *Trial[P, Out], _ bool) string { return strconv.Itoa(t.Round) }},
		{"state", func(t *Trial[P, Out], _ bool) string { return string(t.State) }},
		{"objective", func(t *Trial[P, Out], short bool) string { return objectiveText(t, short) }},
	}
}

func objectiveText[P, Out any](t *Trial[P, Out], short bool) string {
	if t.State == Failed {
		return ""
	}
	if short {
		return strconv.FormatFloat(t.Objective, 'g', 6, 64)
	}
	return strconv.FormatFloat(t.Objective, 'g', -1, 64)
}

// WriteCSV writes the trials as CSV (RFC 4180), one row per trial in id
// order, under the header id, round, state, objective, one column per
// field of P by its JSON name (the fields of a nested struct dotted:
// "opt.lr"), and error. The objective of a failed trial is empty; numbers
// are written in full precision. The bytes are the same for the same
// Result.
func (r Result[P, Out]) WriteCSV(w io.Writer) error {
	cols := trialColumns[P, Out]()
	keys, rows := r.flatTrials()
	cw := csv.NewWriter(w)
	header := make([]string, 0, len(cols)+len(keys)+1)
	for _, c := range cols {
		header = append(header, c.name)
	}
	header = append(header, keys...)
	if err := cw.Write(append(header, "error")); err != nil {
		return err
	}
	for i := range r.Trials {
		t := &r.Trials[i]
		rec := make([]string, 0, len(header)+1)
		for _, c := range cols {
			rec = append(rec, c.cell(t, false))
		}
		for _, k := range keys {
			rec = append(rec, text(rows[i][k]))
		}
		if err := cw.Write(append(rec, t.Error)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ranked returns the indexes of the trials, best first: the complete
// trials by objective (the Result's direction; ties by id), then the
// pruned and the failed ones by id.
func (r Result[P, Out]) ranked() []int {
	idx := make([]int, len(r.Trials))
	for i := range idx {
		idx[i] = i
	}
	group := func(s State) int {
		switch s {
		case Complete:
			return 0
		case Pruned:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		ta, tb := &r.Trials[a], &r.Trials[b]
		if c := cmp.Compare(group(ta.State), group(tb.State)); c != 0 {
			return c
		}
		if ta.State != Complete {
			return cmp.Compare(ta.ID, tb.ID)
		}
		c := cmp.Compare(ta.Objective, tb.Objective)
		if r.Direction == Maximize {
			c = -c
		}
		return cmp.Or(c, cmp.Compare(ta.ID, tb.ID))
	})
	return idx
}

// Headline is the line above the table: how many trials ended how, and
// the best one.
func (r Result[P, Out]) Headline() string {
	counts := map[State]int{}
	for _, t := range r.Trials {
		counts[t.State]++
	}
	var parts []string
	for _, s := range []State{Complete, Pruned, Failed} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	line := fmt.Sprintf("%d %s: %s", len(r.Trials), plural(len(r.Trials), "trial"), strings.Join(parts, ", "))
	if r.BestTrial >= 0 && len(r.Trials) > 0 {
		line += fmt.Sprintf("; best trial %d, objective %s", r.BestTrial, strconv.FormatFloat(r.BestObjective, 'g', 6, 64))
		if r.Direction != "" {
			line += " (" + string(r.Direction) + ")"
		}
	}
	return line
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// maxCell bounds the width of a hyperparameter's or an error's cell in
// the table.
const maxCell = 24

// WriteTable writes the trials as a fixed-width table, best first (see
// Headline for the line above it): the complete trials by objective,
// then the pruned and failed ones by id; columns id, round, state,
// objective, the fields of P (numbers to 5 significant digits, long
// values cut) and error. limit > 0 writes at most limit rows and says
// how many more there are. The text is the same for the same Result.
func (r Result[P, Out]) WriteTable(w io.Writer, limit int) error {
	cols := trialColumns[P, Out]()
	keys, rows := r.flatTrials()
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	var head []string
	for _, c := range cols {
		head = append(head, c.name)
	}
	head = append(append(head, keys...), "error")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	order := r.ranked()
	shown := order
	if limit > 0 && len(order) > limit {
		shown = order[:limit]
	}
	for _, i := range shown {
		t := &r.Trials[i]
		var cells []string
		for _, c := range cols {
			cells = append(cells, c.cell(t, true))
		}
		for _, k := range keys {
			cells = append(cells, cut(short(rows[i][k])))
		}
		cells = append(cells, cut(t.Error))
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " ")); err != nil {
			return err
		}
	}
	if n := len(order) - len(shown); n > 0 {
		_, err := fmt.Fprintf(w, "… %d more\n", n)
		return err
	}
	return nil
}

// short is a JSON value as a table cell: a number to 5 significant
// digits.
func short(v json.RawMessage) string {
	s := text(v)
	if f, err := strconv.ParseFloat(s, 64); err == nil && strings.ContainsAny(s, ".eE") {
		return strconv.FormatFloat(f, 'g', 5, 64)
	}
	return s
}

// cut shortens s to maxCell runes, on one line.
func cut(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= maxCell {
		return s
	}
	return string([]rune(s)[:maxCell-1]) + "…"
}

// summaryRows bounds the table in the run summary.
const summaryRows = 20

// summary is the search step's part of the run summary (see
// pipeline.Step.Summarize).
func summary[P, Out any](info pipeline.SummaryInfo, r Result[P, Out]) string {
	var b strings.Builder
	b.WriteString(r.Headline() + "\n")
	if r.Stopped != "" {
		b.WriteString("stopped: " + r.Stopped + "\n")
	}
	var t bytes.Buffer
	_ = r.WriteTable(&t, summaryRows)
	more := strings.HasPrefix(lastLine(t.String()), "… ")
	b.WriteString(strings.TrimSuffix(t.String(), "\n"))
	hint := fmt.Sprintf("%s hpo -run %s -step %s", info.Pipeline, info.Run, info.Step)
	switch {
	case more:
		b.WriteString(" (" + hint + ")")
	case !r.Files.SVG.IsZero():
		b.WriteString("\nplot and CSV: " + hint + " -o DIR")
	}
	return b.String()
}

func lastLine(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}
