// Package suggest finds the name a user probably meant: the "did you mean"
// of validation messages for field names, placeholders, parameter names
// and struct keys.
package suggest

import (
	"fmt"
	"strconv"
	"strings"
)

// maxInput bounds the input considered: a longer string is no typo of a
// short name, and the edit distance stays cheap.
const maxInput = 64

// Closest returns the candidate nearest to s by edit distance (compared
// case-insensitively), or "" when none is near enough to be a plausible
// typo: at most 2 edits (1 for an input of 1 or 2 bytes), or half the
// candidate's length for long names. Among candidates as near, one that
// also matches in case wins.
// Ties go to the earliest candidate, so the result is deterministic. A
// candidate equal to s is never suggested.
func Closest(s string, candidates []string) string {
	if s == "" || len(s) > maxInput {
		return ""
	}
	ls := strings.ToLower(s)
	best, bestD := "", -1
	for _, c := range candidates {
		if c == s || len(c) > 2*maxInput {
			continue
		}
		limit := max(2, len(c)/2)
		if len(s) <= 2 {
			limit = 1
		}
		d := Distance(ls, strings.ToLower(c))
		if d > limit {
			continue
		}
		// Between candidates as near when case is ignored, the one
		// nearer in case wins ("Modle" suggests "Model" over "model").
		score := 2 * d
		if Distance(s, c) > d {
			score++
		}
		if bestD < 0 || score < bestD {
			best, bestD = c, score
		}
	}
	return best
}

// DidYouMean returns `; did you mean "x"?` for the closest candidate, or
// "" when there is none.
func DidYouMean(s string, candidates []string) string {
	if c := Closest(s, candidates); c != "" {
		return fmt.Sprintf("; did you mean %q?", c)
	}
	return ""
}

// Quote renders names as `"a", "b", "c"`, or "(none)" for no names.
func Quote(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// Distance returns the Levenshtein edit distance between a and b, in
// bytes.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
