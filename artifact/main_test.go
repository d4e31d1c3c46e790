package artifact_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any leaves a goroutine behind:
// writers and readers hash on goroutines of their own, which every
// Close, Abort and error must end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
