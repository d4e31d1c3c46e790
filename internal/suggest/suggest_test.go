package suggest

import "testing"

func TestClosest(t *testing.T) {
	for _, c := range []struct {
		in   string
		cand []string
		want string
	}{
		{"lrr", []string{"lr", "epochs"}, "lr"},
		{"epoch", []string{"lr", "epochs"}, "epochs"},
		{"EPOCHS", []string{"lr", "epochs"}, "epochs"},
		{"batch", []string{"lr", "epochs"}, ""},
		{"", []string{"lr"}, ""},
		{"lr", []string{"lr"}, ""},
		{"x", []string{"lr", "y"}, "y"},
		{"dta", []string{"data", "date"}, "data"},
		{"Modle", []string{"model", "Model"}, "Model"},
		{"modle", []string{"Model", "model"}, "model"},
	} {
		if got := Closest(c.in, c.cand); got != c.want {
			t.Errorf("Closest(%q, %q) = %q, want %q", c.in, c.cand, got, c.want)
		}
	}
	if got := DidYouMean("lrr", []string{"lr"}); got != `; did you mean "lr"?` {
		t.Errorf("DidYouMean = %q", got)
	}
	if got := Quote(nil); got != "(none)" {
		t.Errorf("Quote(nil) = %q", got)
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"a", "", 1},
		{"", "abc", 3},
		{"3g.20gb", "3g.40gb", 1},
		{"kitten", "sitting", 3},
		{"1g.10gb.me", "1g.10gb+me", 1},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Distance(tc.b, tc.a); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.b, tc.a, got, tc.want)
		}
	}
}
