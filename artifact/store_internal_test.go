package artifact

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The SDK's own checksums are asked only where S3 requires them, unless
// the URL chooses: the artifact's SHA-256 already checks every read.
func TestBucketURLChecksums(t *testing.T) {
	u, _ := url.Parse("s3://b/prefix?region=eu-west-1")
	assert.Equal(t, "s3://b?region=eu-west-1&request_checksum_calculation=when_required&response_checksum_validation=when_required", bucketURL(u))
	u, _ = url.Parse("s3://b?response_checksum_validation=when_supported")
	assert.Equal(t, "s3://b?request_checksum_calculation=when_required&response_checksum_validation=when_supported", bucketURL(u))
	u, _ = url.Parse("gs://b/p")
	assert.Equal(t, "gs://b", bucketURL(u))
}
