package local_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

type TrainIn struct {
	LR       pipeline.Ref[float64]
	LogLevel pipeline.Ref[string] `json:"logLevel"`
}

func TestCache(t *testing.T) {
	dir := t.TempDir()
	var calls atomic.Int32
	train := task.New("train", func(_ context.Context, in TrainIn) (Num, error) {
		calls.Add(1)
		return Num{int(in.LR.Get() * 100)}, nil
	}).WithCache(task.Cache{Enabled: true, Version: "1", ExcludeInputs: []string{"LogLevel"}})
	p := pipeline.New("cached", nil)
	lr := pipeline.NewParam(p, "lr", 0.1)
	logLevel := pipeline.NewParam(p, "logLevel", "info")
	tr := pipeline.Add(p, train, TrainIn{LR: lr.Ref(), LogLevel: logLevel.Ref()})
	pipeline.Add(p, inc, FromIn{In: tr.Output()})
	b := local.New(&local.Options{CacheDir: dir})

	// The cases run in order against one cache directory.
	for _, tc := range []struct {
		name      string
		params    map[string]string
		wantPhase backends.Phase
		wantCalls int32
		wantMsg   string
		wantOut   string
	}{
		{"FirstRunMisses", nil, backends.PhaseSucceeded, 1, "", `{"V":10}`},
		{"SecondRunHits", nil, backends.PhaseCached, 1, "", `{"V":10}`},
		{"ExcludedInputStillHits", map[string]string{"logLevel": "debug"}, backends.PhaseCached, 1, "", `{"V":10}`},
		{"OtherInputMisses", map[string]string{"lr": "0.2"}, backends.PhaseSucceeded, 2, "cache miss: input LR changed", `{"V":20}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := pipeline.Run(t.Context(), p, b, &pipeline.RunOptions{Params: tc.params})
			require.NoError(t, err)

			s := stepOf(t, st, "train")
			assert.Equal(t, tc.wantPhase, s.Phase)
			assert.Equal(t, tc.wantCalls, calls.Load())
			assert.Equal(t, tc.wantMsg, s.Message)
			assert.JSONEq(t, tc.wantOut, string(s.Output))
			require.Len(t, s.CacheKey, 64)
			if tc.wantPhase == backends.PhaseCached {
				assert.Empty(t, s.Attempts)
			}
			assert.FileExists(t, filepath.Join(dir, s.CacheKey[:2], s.CacheKey+".json"))
			manifest, err := os.ReadFile(filepath.Join(dir, s.CacheKey[:2], s.CacheKey+".key.json"))
			require.NoError(t, err)
			var parts local.KeyParts
			require.NoError(t, json.Unmarshal(manifest, &parts))
			assert.Equal(t, s.CacheKey, parts.Key(), "the manifest explains the key")
			assert.NotContains(t, string(parts.Input), "logLevel")

			assert.Equal(t, backends.PhaseSucceeded, stepOf(t, st, "inc").Phase, "a cached output feeds downstream steps")
		})
	}
}

func TestCacheForEachInstances(t *testing.T) {
	dir := t.TempDir()
	var calls atomic.Int32
	work := task.New("work", func(_ context.Context, in WorkIn) (Num, error) {
		calls.Add(1)
		return Num{in.I.Get()}, nil
	}).WithCache(task.Cache{Enabled: true})
	build := func(items []int) *pipeline.Pipeline {
		p := pipeline.New("fan-cache", nil)
		pipeline.ForEach(p, work, pipeline.Const(items), func(i pipeline.Ref[int]) WorkIn { return WorkIn{I: i} })
		return p
	}
	b := local.New(&local.Options{CacheDir: dir})

	for _, tc := range []struct {
		name          string
		items         []int
		wantPhase     backends.Phase
		wantInstances []backends.Phase
		wantCalls     int32
	}{
		{"First", []int{1, 2}, backends.PhaseSucceeded, []backends.Phase{"Succeeded", "Succeeded"}, 2},
		{"Again", []int{1, 2}, backends.PhaseCached, []backends.Phase{"Cached", "Cached"}, 2},
		{"OneChanged", []int{1, 3}, backends.PhaseSucceeded, []backends.Phase{"Cached", "Succeeded"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := pipeline.Run(t.Context(), build(tc.items), b, nil)
			require.NoError(t, err)
			w := stepOf(t, st, "work")
			assert.Equal(t, tc.wantPhase, w.Phase)
			var got []backends.Phase
			for _, in := range w.Instances {
				got = append(got, in.Phase)
			}
			assert.Equal(t, tc.wantInstances, got)
			assert.Equal(t, tc.wantCalls, calls.Load())
			out, _ := json.Marshal([]Num{{tc.items[0]}, {tc.items[1]}})
			assert.JSONEq(t, string(out), string(w.Output))
		})
	}
}

func TestCacheDiff(t *testing.T) {
	base := local.KeyParts{Task: "train", Kind: task.KindGo, Image: "img:1", Version: "1", Input: json.RawMessage(`{"a":1,"lr":0.1}`)}
	with := func(f func(k *local.KeyParts)) local.KeyParts {
		k := base
		f(&k)
		return k
	}
	for _, tc := range []struct {
		name string
		new  local.KeyParts
		want []string
	}{
		{"Same", base, nil},
		{"Image", with(func(k *local.KeyParts) { k.Image = "img:2" }), []string{"image changed"}},
		{"InputField", with(func(k *local.KeyParts) { k.Input = json.RawMessage(`{"a":1,"lr":0.2}`) }), []string{"input lr changed"}},
		{"InputFieldsAddedAndRemoved", with(func(k *local.KeyParts) { k.Input = json.RawMessage(`{"b":1,"lr":0.1}`) }), []string{"input a removed", "input b added"}},
		{"VersionAndArgs", with(func(k *local.KeyParts) { k.Version = "2"; k.Args = []string{"-v"} }), []string{"args changed", "version changed"}},
		{"InputNotAnObject", with(func(k *local.KeyParts) { k.Input = json.RawMessage(`[1]`) }), []string{"input changed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, local.CacheDiff(base, tc.new))
			assert.Equal(t, tc.want == nil, base.Key() == tc.new.Key())
		})
	}
}
