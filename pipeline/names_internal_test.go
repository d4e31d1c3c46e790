package pipeline

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/internal/naming"
	"github.com/sluice-ml/sluice/task"
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

// sanitizeNames gives each step the name, and the problems, that
// checkNameAt gives its name alone, whether or not it cuts the name from
// its shared buffer.
func TestSanitizeNamesIsCheckNameAt(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const alphabet = "abcxyzABCXYZ0189-_ ./é日\xff"
	p := New("p", nil)
	tk := task.New("t", srcTestWork)
	for i := range 3000 {
		b := make([]byte, r.IntN(70))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		name := string(b)
		if i%3 == 0 {
			name = fmt.Sprintf("Task %05d", i)
		}
		Add(p, tk.WithName(name), 0)
	}
	FanOut(p, tk.WithName("Fan Out"), []int{1, 2})
	bld := &builder{p: p, names: make([]string, len(p.nodes)), nameErrs: map[int][]*field.Error{}}
	bld.tasks = field.NewPath("pipeline").Child("tasks")
	bld.sanitizeNames()
	for _, n := range p.nodes {
		at := bld.nodeAt(n)
		want, wantErrs := checkNameAt(&at, n.name)
		if n.fanIndex >= 0 {
			want = naming.Fit(naming.Sanitize(n.name), naming.MaxLabel)
		}
		if got := bld.names[n.index]; got != want || fmt.Sprint(bld.nameErrs[n.index]) != fmt.Sprint(wantErrs) {
			t.Fatalf("step %q: name %q, %v; want %q, %v", n.name, got, bld.nameErrs[n.index], want, wantErrs)
		}
	}
}

// nameTable finds what a map finds, for names set in any order with
// many repeated.
func TestNameTableIsAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{0, 1, 7, 8, 9, 100, 5000} {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("task-%d", r.IntN(max(1, n/3)))
		}
		tab := newNameTable(n)
		want := map[string]int{}
		for i, name := range names {
			slot, first, ok := tab.find(name, names)
			w, wok := want[name]
			if ok != wok || ok && first != w {
				t.Fatalf("n=%d: find(%q) = %d, %v; want %d, %v", n, name, first, ok, w, wok)
			}
			if !ok && r.IntN(4) > 0 { // set most names; leave some for a later step
				tab.slots[slot] = int32(i) + 1
				want[name] = i
			}
		}
	}
}
