package pipeline

import (
	"math/rand/v2"
	"testing"

	"github.com/sluice-ml/sluice/internal/naming"
)

// sanitize is naming.Sanitize, for names that are labels already, ASCII
// names and any other.
func TestSanitizeIsNamingSanitize(t *testing.T) {
	names := []string{"", "a", "train", "Train Model", "  --x__y--  ", "2024 eval", "résumé", "日本語", "a.b/c",
		"UPPER-case_mixed1", "-lead", "trail-", "dou--ble", "a-b", "Task 00001", "\x00\x7f", "x\xffy"}
	r := rand.New(rand.NewPCG(3, 4))
	const alphabet = "abcxyzABCXYZ0189-_ ./é日\xff"
	for range 5000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		names = append(names, string(b))
	}
	for _, name := range names {
		if got, want := sanitize(name), naming.Sanitize(name); got != want {
			t.Fatalf("sanitize(%q) = %q, naming.Sanitize: %q", name, got, want)
		}
	}
}
