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
