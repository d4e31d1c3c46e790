package hpo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The plot's look: one panel's size, and the colors of the trials.
var (
	panelW, panelH = 4 * vg.Inch, 3 * vg.Inch
	completeColor  = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	prunedColor    = color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff}
	bestColor      = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

// maxPanelCols is how many panels a row of the figure has at most.
const maxPanelCols = 3

// Plot draws the search as a figure, in format "svg" or "png": the first
// panel is the objective of each trial by id, with the best so far as a
// line (by the Result's Direction); then one panel per searched field
// (Result.Dims), the objective against the field's value, on a log axis
// for LogFloat and LogInt and at labelled positions for a Choice. Pruned
// trials are grey triangles; failed trials have no objective and are not
// drawn (the first panel's title counts them). The SVG bytes are the same
// for the same Result.
func (r Result[P, Out]) Plot(w io.Writer, format string) error {
	if format != "svg" && format != "png" {
		return fmt.Errorf("hpo: plot format %q: use svg or png", format)
	}
	panels, err := r.panels()
	if err != nil {
		return err
	}
	cols := min(len(panels), maxPanelCols)
	rows := (len(panels) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, p := range panels {
		grid[i/cols][i%cols] = p
	}
	width, height := vg.Length(cols)*panelW, vg.Length(rows)*panelH
	var canvas interface {
		vg.CanvasWriterTo
	}
	if format == "svg" {
		canvas = vgsvg.New(width, height)
	} else {
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(96), vgimg.UseBackgroundColor(color.White))}
	}
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(grid, tiles, dc)
	for j := range grid {
		for i, p := range grid[j] {
			if p != nil {
				p.Draw(canvases[j][i])
			}
		}
	}
	if _, err := canvas.WriteTo(w); err != nil {
		return fmt.Errorf("hpo: writing the plot: %w", err)
	}
	return nil
}

// panels returns the figure's panels: the objective per trial, then one
// per searched field.
func (r Result[P, Out]) panels() ([]*plot.Plot, error) {
	var complete, pruned, best plotter.XYs
	failed := 0
	have := false
	var bestSoFar float64
	for _, t := range r.Trials {
		switch t.State {
		case Complete:
			complete = append(complete, plotter.XY{X: float64(t.ID), Y: t.Objective})
			if !have || r.Direction.better(t.Objective, bestSoFar) {
				bestSoFar, have = t.Objective, true
			}
			best = append(best, plotter.XY{X: float64(t.ID), Y: bestSoFar})
		case Pruned:
			pruned = append(pruned, plotter.XY{X: float64(t.ID), Y: t.Objective})
		default:
			failed++
		}
	}
	first := newPanel("objective per trial", "trial", "objective")
	first.X.Tick.Marker = intTicks{}
	if failed > 0 {
		first.Title.Text += fmt.Sprintf(" (%d failed, not shown)", failed)
	}
	if err := addPoints(first, complete, pruned); err != nil {
		return nil, err
	}
	if len(best) > 0 {
		l, err := plotter.NewLine(best)
		if err != nil {
			return nil, fmt.Errorf("hpo: plot: %w", err)
		}
		l.StepStyle = plotter.PostStep
		l.LineStyle.Color, l.LineStyle.Width = bestColor, vg.Points(1.5)
		first.Add(l)
		first.Legend.Add("best so far", l)
	}
	// Room above the points for the legend.
	first.Y.Max += (first.Y.Max - first.Y.Min) / 4
	panels := []*plot.Plot{first}

	keys, rows := r.flatTrials()
	for _, d := range r.dims(keys, rows) {
		title := d.Name
		if d.When != nil {
			vs := make([]string, len(d.When.Values))
			for i, v := range d.When.Values {
				vs[i] = compact(v)
			}
			title = fmt.Sprintf("%s (when %s is %s)", d.Name, d.When.Field, strings.Join(vs, " or "))
		}
		p := newPanel(title, d.Name, "objective")
		pos, labels := positions(d)
		var c, pr plotter.XYs
		for i, t := range r.Trials {
			if t.State == Failed || !d.When.holds(rows[i]) {
				continue
			}
			x, ok := pos(rows[i][d.Name])
			if !ok || (d.Scale == Log && x <= 0) {
				continue
			}
			pt := plotter.XY{X: x, Y: t.Objective}
			if t.State == Pruned {
				pr = append(pr, pt)
			} else {
				c = append(c, pt)
			}
		}
		if err := addPoints(p, c, pr); err != nil {
			return nil, err
		}
		if len(pr) == 0 {
			p.Legend = plot.NewLegend() // the first panel's legend says it all
		}
		switch d.Scale {
		case Log:
			if len(c)+len(pr) == 0 {
				break // a log axis needs a positive range
			}
			if p.X.Min <= 0 || p.X.Min == p.X.Max {
				// One value (plot pads it by ±1): a decade around it.
				x := max(p.X.Max, p.X.Min)
				p.X.Min, p.X.Max = x/math.Sqrt(10), x*math.Sqrt(10)
			}
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		case Categorical:
			p.X.Tick.Marker = plot.ConstantTicks(labels)
			p.X.Min, p.X.Max = -0.5, float64(len(labels))-0.5
		default:
			if integers(c) && integers(pr) {
				p.X.Tick.Marker = intTicks{}
			}
		}
		panels = append(panels, p)
	}
	return panels, nil
}

func newPanel(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p
}

// addPoints adds the complete trials' points, and the pruned ones', to p.
func addPoints(p *plot.Plot, complete, pruned plotter.XYs) error {
	for _, set := range []struct {
		xys   plotter.XYs
		name  string
		color color.Color
		shape draw.GlyphDrawer
	}{{complete, "complete", completeColor, draw.CircleGlyph{}}, {pruned, "pruned", prunedColor, draw.TriangleGlyph{}}} {
		if len(set.xys) == 0 {
			continue
		}
		s, err := plotter.NewScatter(set.xys)
		if err != nil {
			return fmt.Errorf("hpo: plot: %w", err)
		}
		s.GlyphStyle.Color, s.GlyphStyle.Shape, s.GlyphStyle.Radius = set.color, set.shape, vg.Points(2.5)
		p.Add(s)
		p.Legend.Add(set.name, s)
	}
	return nil
}

// dims returns the searched fields to plot: the Result's Dims, or, for a
// Result without them, every field whose values are all numbers.
func (r Result[P, Out]) dims(keys []string, rows []map[string]json.RawMessage) []DimInfo {
	if len(r.Dims) > 0 {
		return r.Dims
	}
	var out []DimInfo
	for _, k := range keys {
		numeric, distinct := true, map[string]bool{}
		for _, row := range rows {
			v := text(row[k])
			distinct[v] = true
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				numeric = false
			}
		}
		if numeric && len(distinct) > 1 {
			out = append(out, DimInfo{Name: k, Scale: Linear})
		}
	}
	return out
}

// positions returns how a field's value maps to the x axis, and a
// Choice's tick labels.
func positions(d DimInfo) (func(json.RawMessage) (float64, bool), []plot.Tick) {
	if d.Scale != Categorical {
		return func(v json.RawMessage) (float64, bool) {
			x, err := strconv.ParseFloat(text(v), 64)
			return x, err == nil && !math.IsNaN(x) && !math.IsInf(x, 0)
		}, nil
	}
	idx := make(map[string]int, len(d.Choices))
	ticks := make([]plot.Tick, len(d.Choices))
	for i, c := range d.Choices {
		idx[compact(c)] = i
		ticks[i] = plot.Tick{Value: float64(i), Label: cut(text(c))}
	}
	return func(v json.RawMessage) (float64, bool) {
		i, ok := idx[compact(v)]
		return float64(i), ok
	}, ticks
}

func compact(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return b.String()
}

// intTicks marks an axis of whole numbers (trial ids, layers): the
// default ticks, labelled without decimals, those between whole numbers
// left unlabelled.
type intTicks struct{}

func (intTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label == "" {
			continue
		}
		if ticks[i].Value != math.Trunc(ticks[i].Value) {
			ticks[i].Label = ""
			continue
		}
		ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', 0, 64)
	}
	return ticks
}

// integers reports whether every x of xys is a whole number.
func integers(xys plotter.XYs) bool {
	for _, xy := range xys {
		if xy.X != math.Trunc(xy.X) {
			return false
		}
	}
	return true
}
