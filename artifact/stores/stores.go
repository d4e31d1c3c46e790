// Package stores links the cloud drivers of the artifact store into a
// program: s3:// (AWS S3 and S3-compatible servers), gs:// (Google Cloud
// Storage) and azblob:// (Azure Blob Storage). Package artifact has
// file:// and mem:// on its own; a pipeline program whose artifacts live
// in a cloud imports this package for its side effects:
//
//	import _ "github.com/sluice-ml/sluice/artifact/stores"
//
// The drivers are those of gocloud.dev/blob; see package artifact,
// "Stores and credentials", for their URLs and where their credentials
// come from.
package stores

import (
	_ "gocloud.dev/blob/azureblob" // azblob://
	_ "gocloud.dev/blob/gcsblob"   // gs://
	_ "gocloud.dev/blob/s3blob"    // s3://
)
