// Package s3test points tests at the S3-compatible test server that
// .ci/run starts (versitygw), each test in a fresh bucket of its own.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// The test server is described by these variables, which .ci/run exports.
const (
	EnvEndpoint  = "FILESTAGE_TEST_S3_ENDPOINT"
	EnvAccessKey = "FILESTAGE_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "FILESTAGE_TEST_S3_SECRET_KEY"
	EnvRegion    = "FILESTAGE_TEST_S3_REGION"
)

const howTo = EnvEndpoint + ` is not set, so there is no S3 test server. .ci/run starts one; to start one by hand:
  go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
  versitygw --port 127.0.0.1:7070 --access test-access --secret test-secret --quiet posix "$(mktemp -d)" &
  export ` + EnvEndpoint + `=http://127.0.0.1:7070 ` + EnvAccessKey + `=test-access ` + EnvSecretKey + `=test-secret`

// Env returns the environment that points filestage's s3 provider at the
// test server, with a fresh bucket that is emptied and removed when the
// test ends: FILESTAGE_S3_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_REGION, AWS_ENDPOINT_URL_S3 and FILESTAGE_S3_PATH_STYLE. Without a
// server the test is skipped, or fails when CI=true, so that CI can never
// silently not run it.
func Env(t testing.TB) map[string]string {
	t.Helper()
	endpoint := os.Getenv(EnvEndpoint)
	if endpoint == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(howTo)
		}
		t.Skip(howTo)
	}
	region := os.Getenv(EnvRegion)
	if region == "" {
		region = "us-east-1"
	}
	env := map[string]string{
		"FILESTAGE_S3_BUCKET":     bucketName(),
		"AWS_ACCESS_KEY_ID":       os.Getenv(EnvAccessKey),
		"AWS_SECRET_ACCESS_KEY":   os.Getenv(EnvSecretKey),
		"AWS_REGION":              region,
		"AWS_ENDPOINT_URL_S3":     endpoint,
		"FILESTAGE_S3_PATH_STYLE": "true",
	}
	c := Client(env)
	bucket := aws.String(env["FILESTAGE_S3_BUCKET"])
	in := &s3.CreateBucketInput{Bucket: bucket}
	if region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(region)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.CreateBucket(ctx, in); err != nil {
		t.Fatalf("creating test bucket at %s: %v", endpoint, err)
	}
	t.Cleanup(func() { removeBucket(t, c, bucket) })
	return env
}

// Client is a plain S3 client for env, for tests to look at what was stored.
func Client(env map[string]string) *s3.Client {
	return s3.New(s3.Options{
		Region:       env["AWS_REGION"],
		BaseEndpoint: aws.String(env["AWS_ENDPOINT_URL_S3"]),
		UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(
			env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// removeBucket empties and deletes a test bucket; failures are only logged,
// since the server's directory goes away with it anyway.
func removeBucket(t testing.TB, c *s3.Client, bucket *string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uploads, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: bucket})
	if err == nil {
		for _, u := range uploads.Uploads {
			c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: bucket, Key: u.Key, UploadId: u.UploadId})
		}
	}
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: bucket})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Logf("listing test bucket %s: %v", *bucket, err)
			return
		}
		for _, o := range page.Contents {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bucket, Key: o.Key}); err != nil {
				t.Logf("emptying test bucket %s: %v", *bucket, err)
			}
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: bucket}); err != nil {
		t.Logf("deleting test bucket %s: %v", *bucket, err)
	}
}

// bucketName is unique per test: bucket names are lower-case.
func bucketName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "filestage-test-" + hex.EncodeToString(b)
}
