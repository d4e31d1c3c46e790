package resources

import (
	"fmt"
	"github.com/sluice-ml/sluice/internal/suggest"
	"strconv"
	"strings"
)

// closest returns the candidate nearest to s by edit distance (compared
// case-insensitively), or "" when none is near enough to be a plausible
// typo. For MIG profile names the compute-slice count breaks ties, since it
// is what users mean first: "3g.20gb" on an A100-80GB suggests "3g.40gb",
// not "2g.20gb", and "5g.40gb" suggests "4g.40gb" before "7g.40gb". Ties
// left after that go to the earliest candidate, so the result is
// deterministic.
func closest(s string, candidates []string) string {
	const maxInput = 64 // longer input is no typo of a short name
	if s == "" || len(s) > maxInput {
		return ""
	}
	ls := strings.ToLower(s)
	best, bestScore := "", -1
	for _, c := range candidates {
		d := suggest.Distance(ls, strings.ToLower(c))
		if d > max(2, len(c)/2) {
			continue
		}
		score := 4*d + sliceDistance(ls, strings.ToLower(c))
		if bestScore < 0 || score < bestScore {
			best, bestScore = c, score
		}
	}
	return best
}

// sliceDistance compares the compute-slice prefixes ("3g" of "3g.40gb") of
// two MIG profile names: 0 when equal, up to 3 as the slice counts differ
// more, 1 when either has no numeric prefix and they differ.
func sliceDistance(a, b string) int {
	pa, _, _ := strings.Cut(a, ".")
	pb, _, _ := strings.Cut(b, ".")
	if pa == pb {
		return 0
	}
	na, errA := strconv.Atoi(strings.TrimSuffix(pa, "g"))
	nb, errB := strconv.Atoi(strings.TrimSuffix(pb, "g"))
	if errA != nil || errB != nil {
		return 1
	}
	return min(3, max(na-nb, nb-na))
}

// didYouMean returns `; did you mean "x"?` for the closest candidate, or
// "". Input that starts a few candidates ("A100" for "A100-40GB" and
// "A100-80GB") suggests those.
func didYouMean(s string, candidates []string) string {
	var prefixed []string
	for _, c := range candidates {
		if s != "" && len(s) < len(c) && strings.HasPrefix(strings.ToLower(c), strings.ToLower(s)) {
			prefixed = append(prefixed, strconv.Quote(c))
		}
	}
	if n := len(prefixed); n > 0 && n <= 3 {
		return "; did you mean " + strings.Join(prefixed, " or ") + "?"
	}
	if c := closest(s, candidates); c != "" {
		return fmt.Sprintf("; did you mean %q?", c)
	}
	return ""
}

// quoteList renders names as `"a", "b", "c"`.
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
