package naming

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"train":             "train",
		"Train Model":       "train-model",
		"  --x__y--  ":      "x-y",
		"2024 eval":         "2024-eval",
		"résumé":            "r-sum",
		"日本語":               "",
		"":                  "",
		"a.b/c":             "a-b-c",
		"UPPER-case_mixed1": "upper-case-mixed1",
	} {
		assert.Equal(t, want, Sanitize(in), "Sanitize(%q)", in)
	}
}

func TestFit(t *testing.T) {
	long := strings.Repeat("a", 80)
	got := Fit(long, MaxLabel)
	assert.Len(t, got, MaxLabel)
	assert.True(t, IsLabel(got))
	assert.Equal(t, got, Fit(long, MaxLabel), "deterministic")
	assert.NotEqual(t, got, Fit(long+"b", MaxLabel), "different names stay different")
	assert.Equal(t, "short", Fit("short", MaxLabel))
	// A prefix ending in '-' is trimmed so no '--' precedes the hash.
	dashy := strings.Repeat("ab-", 30)
	assert.True(t, IsLabel(Fit(dashy, 20)), Fit(dashy, 20))
}

func TestHashStable(t *testing.T) {
	assert.Equal(t, Hash("train", 8), Hash("train", 8))
	assert.Len(t, Hash("x", 100), 52)
}

// FuzzSanitize checks that every non-empty result, once fitted, is a label
// that Kubernetes accepts, and that sanitizing is idempotent.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"train", "Train Model", "日本語", "--", "a--b", strings.Repeat("x", 200), "0lead", "ünï cödé 42"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Sanitize(s)
		if got != Sanitize(got) {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, got, Sanitize(got))
		}
		if got == "" {
			return
		}
		fit := Fit(got, MaxLabel)
		if errs := validation.IsDNS1123Label(fit); len(errs) > 0 || !IsLabel(fit) {
			t.Fatalf("Fit(Sanitize(%q)) = %q: %v", s, fit, errs)
		}
		if !utf8.ValidString(fit) || len(fit) > MaxLabel {
			t.Fatalf("bad length %d", len(fit))
		}
	})
}
