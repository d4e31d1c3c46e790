// Package naming turns user-given names into Kubernetes-safe names: DNS-1123
// labels, shortened deterministically with a short stable hash when too
// long.
package naming

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// MaxLabel is the longest DNS-1123 label.
const MaxLabel = 63

// Sanitize maps s to a DNS-1123 label: lowercase ASCII letters and digits,
// with every other run of characters turned into one '-', and no '-' at
// either end. It returns "" when s has no ASCII letter or digit. The result
// may be longer than MaxLabel; see [Fit].
func Sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	dash := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		default:
			dash = b.Len() > 0
			continue
		}
		if dash {
			b.WriteByte('-')
			dash = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Hash returns a short stable hash of s: n lowercase base32 characters
// (n ≤ 52) of its SHA-256.
func Hash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	h := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))
	if n > len(h) {
		n = len(h)
	}
	return h[:n]
}

// Fit returns name unchanged if it is at most max bytes long; otherwise a
// prefix of it followed by '-' and a 5-character hash of the whole name,
// exactly max bytes long and never ending in '-' before the hash. name must
// be a sanitized label and max at least 7.
func Fit(name string, max int) string {
	if len(name) <= max {
		return name
	}
	const h = 5
	prefix := strings.TrimRight(name[:max-h-1], "-")
	return prefix + "-" + Hash(name, h)
}

// IsLabel reports whether s is a DNS-1123 label.
func IsLabel(s string) bool {
	if len(s) == 0 || len(s) > MaxLabel {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}
