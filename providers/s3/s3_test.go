package s3

import (
	"crypto/md5"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/filestage/filestage/providers"
)

// These tests need no server: settings, keys, what a presigned URL signs,
// and how S3 errors are reported.

func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// offline is a configuration whose endpoint nothing listens on.
func offline() map[string]string {
	return map[string]string{
		"FILESTAGE_S3_BUCKET":     "stage",
		"AWS_ACCESS_KEY_ID":       "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":   "not-a-real-secret-0123456789",
		"AWS_REGION":              "eu-west-3",
		"AWS_ENDPOINT_URL_S3":     "http://127.0.0.1:1",
		"FILESTAGE_S3_PATH_STYLE": "true",
	}
}

func TestNewSettings(t *testing.T) {
	tests := []struct {
		name    string
		change  map[string]string
		wantErr string // "" for success
		prefix  string
	}{
		{"complete", nil, "", ""},
		{"no bucket", map[string]string{"FILESTAGE_S3_BUCKET": ""}, "FILESTAGE_S3_BUCKET is required", ""},
		{"blank bucket", map[string]string{"FILESTAGE_S3_BUCKET": "  "}, "FILESTAGE_S3_BUCKET is required", ""},
		{"path style not a bool", map[string]string{"FILESTAGE_S3_PATH_STYLE": "yes please"}, "FILESTAGE_S3_PATH_STYLE", ""},
		{"endpoint without scheme", map[string]string{"AWS_ENDPOINT_URL_S3": "10.0.0.5:9000"}, "AWS_ENDPOINT_URL_S3 must be an absolute http(s) URL", ""},
		{"endpoint with credentials, without scheme", map[string]string{"AWS_ENDPOINT_URL_S3": "admin:s3cret-pw@minio:9000"}, "AWS_ENDPOINT_URL_S3 must be an absolute http(s) URL", ""},
		{"generic endpoint without scheme", map[string]string{"AWS_ENDPOINT_URL_S3": "", "AWS_ENDPOINT_URL": "minio:9000"}, "AWS_ENDPOINT_URL must be an absolute http(s) URL", ""},
		{"endpoint with blanks", map[string]string{"AWS_ENDPOINT_URL_S3": " http://127.0.0.1:1 "}, "", ""},
		{"generic endpoint", map[string]string{"AWS_ENDPOINT_URL_S3": "", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, "", ""},
		{"access key without secret", map[string]string{"AWS_SECRET_ACCESS_KEY": ""}, "AWS_SECRET_ACCESS_KEY", ""},
		{"prefix", map[string]string{"FILESTAGE_S3_PREFIX": "uploads"}, "", "uploads/"},
		{"prefix with slashes", map[string]string{"FILESTAGE_S3_PREFIX": "/team/uploads/"}, "", "team/uploads/"},
		{"prefix with ..", map[string]string{"FILESTAGE_S3_PREFIX": "a/../b"}, "FILESTAGE_S3_PREFIX", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := offline()
			for k, v := range tt.change {
				env[k] = v
			}
			p, err := New(t.Context(), providers.Settings{Getenv: getenv(env)})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				for _, name := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
					if v := tt.change[name]; v != "" && strings.Contains(err.Error(), v) {
						t.Errorf("error %q shows the value of %s", err, name)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.prefix != tt.prefix || p.bucket != "stage" {
				t.Errorf("prefix %q bucket %q", p.prefix, p.bucket)
			}
		})
	}
}

// TestNewReadsOnlyGetenv: settings come through Settings.Env, as in every
// provider: trimmed, and nothing read when Getenv is nil.
func TestNewReadsOnlyGetenv(t *testing.T) {
	t.Setenv("FILESTAGE_S3_BUCKET", "from-the-process")
	if _, err := New(t.Context(), providers.Settings{}); err == nil || !strings.Contains(err.Error(), "FILESTAGE_S3_BUCKET is required") {
		t.Errorf("without Getenv: %v, want FILESTAGE_S3_BUCKET is required", err)
	}

	env := offline()
	env["FILESTAGE_S3_BUCKET"] = " stage "
	env["AWS_REGION"] = " "
	env["AWS_DEFAULT_REGION"] = " ap-south-1 "
	p, err := New(t.Context(), providers.Settings{Getenv: getenv(env)})
	if err != nil {
		t.Fatal(err)
	}
	if p.bucket != "stage" || p.client.Options().Region != "ap-south-1" {
		t.Errorf("bucket %q region %q, want stage and AWS_DEFAULT_REGION's ap-south-1", p.bucket, p.client.Options().Region)
	}
}

// TestRequestUploadTooLarge: over 5 GiB no presigned PUT can carry the
// file; RequestUpload says so before any request (nothing listens on the
// endpoint) and points to the tool that uploads it in parts.
func TestRequestUploadTooLarge(t *testing.T) {
	p, err := New(t.Context(), providers.Settings{Getenv: getenv(offline())})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.RequestUpload(t.Context(), providers.UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Size: 5<<30 + 1})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusRequestEntityTooLarge || pe.Slug != "FILE_TOO_LARGE" ||
		!strings.Contains(pe.Fix, "stage_connector_file") || !strings.Contains(pe.Fix, "5 GiB") {
		t.Fatalf("%#v, want FILE_TOO_LARGE pointing to stage_connector_file", err)
	}
}

func TestObjectKey(t *testing.T) {
	sum := md5.Sum([]byte("hello"))
	const hexSum = "5d41402abc4b2a76b9719d911017c592"
	tests := []struct {
		prefix, filename, want string
	}{
		{"", "Report.PDF", "gmail/GMAIL_SEND_EMAIL/" + hexSum + ".pdf"},
		{"uploads/", "a.tar.gz", "uploads/gmail/GMAIL_SEND_EMAIL/" + hexSum + ".gz"},
		{"", "no-extension", "gmail/GMAIL_SEND_EMAIL/" + hexSum},
		{"", "odd.ex-t", "gmail/GMAIL_SEND_EMAIL/" + hexSum},
		{"", "long.abcdefghijklmnopq", "gmail/GMAIL_SEND_EMAIL/" + hexSum},
		{"", "../../etc/passwd.txt", "gmail/GMAIL_SEND_EMAIL/" + hexSum + ".txt"},
	}
	for _, tt := range tests {
		p := &Provider{prefix: tt.prefix}
		got := p.objectKey(providers.UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: tt.filename, MD5: sum})
		if got != tt.want {
			t.Errorf("prefix %q file %q: key %q, want %q", tt.prefix, tt.filename, got, tt.want)
		}
	}
}

// TestPresignSigns: the URL signs exactly the headers the slot lists (and
// the length, when known), never a checksum, and expires when it says.
// If-None-Match: * is among them, so that S3 refuses to replace an object.
func TestPresignSigns(t *testing.T) {
	env := offline()
	sum := md5.Sum([]byte("hello"))
	tests := []struct {
		name          string
		size          int64
		ttl           time.Duration
		signedHeaders string
		expires       string
	}{
		{"known size", 5, URLTTL, "content-length;content-md5;content-type;host;if-none-match", "3600"},
		{"unknown size", -1, URLTTL, "content-md5;content-type;host;if-none-match", "3600"},
		{"expiry clamped to 7 days", 5, 30 * 24 * time.Hour, "content-length;content-md5;content-type;host;if-none-match", "604800"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(t.Context(), providers.Settings{Getenv: getenv(env)})
			if err != nil {
				t.Fatal(err)
			}
			p.ttl = tt.ttl
			before := time.Now()
			s, err := p.presignPut(t.Context(), "gmail/GMAIL_SEND_EMAIL/x.txt", providers.UploadRequest{
				Mimetype: "text/plain", MD5: sum, Size: tt.size,
			})
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(s.URL)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if got := q.Get("X-Amz-SignedHeaders"); got != tt.signedHeaders {
				t.Errorf("signed headers %q, want %q", got, tt.signedHeaders)
			}
			if got := q.Get("X-Amz-Expires"); got != tt.expires {
				t.Errorf("X-Amz-Expires %q, want %s", got, tt.expires)
			}
			if low := strings.ToLower(s.URL); strings.Contains(low, "checksum") || strings.Contains(low, "crc") {
				t.Errorf("URL signs a checksum: %s", s.URL)
			}
			if strings.Contains(s.URL, env["AWS_SECRET_ACCESS_KEY"]) {
				t.Error("URL holds the secret")
			}
			if u.Path != "/stage/gmail/GMAIL_SEND_EMAIL/x.txt" || s.Method != http.MethodPut {
				t.Errorf("%s %s", s.Method, u.Path)
			}
			want := map[string]string{"Content-Type": "text/plain", "Content-MD5": "XUFAKrxLKna5cZ2REBfFkg==", "If-None-Match": "*"}
			if !maps.Equal(s.Headers, want) {
				t.Errorf("headers %v, want %v", s.Headers, want)
			}
			ttl := min(tt.ttl, maxPresignTTL)
			if s.ExpiresAt.Before(before.Add(ttl-time.Second)) || s.ExpiresAt.After(time.Now().Add(ttl)) {
				t.Errorf("expires at %v, want about %v from now", s.ExpiresAt, ttl)
			}
			if s.StorageBackend != "s3" || s.Key != "gmail/GMAIL_SEND_EMAIL/x.txt" {
				t.Errorf("slot %+v", s)
			}
		})
	}
}

// apiError builds an error shaped as the SDK's: an operation error around
// an HTTP response error around S3's code.
func apiError(status int, code string) error {
	resp := &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: http.Header{}}}
	return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &awshttp.ResponseError{
		RequestID:     "REQ123",
		ResponseError: &smithyhttp.ResponseError{Response: resp, Err: &smithy.GenericAPIError{Code: code, Message: "from S3"}},
	}}
}

func TestFail(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		slug    string // "" when the error is only wrapped
		fixWord string
	}{
		{"no such bucket", apiError(404, "NoSuchBucket"), "S3_NO_SUCH_BUCKET", "FILESTAGE_S3_BUCKET"},
		{"unknown key", apiError(403, "InvalidAccessKeyId"), "S3_AUTH_FAILED", "AWS_ACCESS_KEY_ID"},
		{"unknown key, as versitygw says it", apiError(404, "XAdminUserNotFound"), "S3_AUTH_FAILED", "AWS_ACCESS_KEY_ID"},
		{"wrong secret", apiError(403, "SignatureDoesNotMatch"), "S3_AUTH_FAILED", "AWS_SECRET_ACCESS_KEY"},
		{"denied", apiError(403, "AccessDenied"), "S3_ACCESS_DENIED", "AWS_ACCESS_KEY_ID"},
		{"bare 403 of a HEAD", apiError(403, "Forbidden"), "S3_ACCESS_DENIED", "AWS_SECRET_ACCESS_KEY"},
		{"wrong region", apiError(400, "AuthorizationHeaderMalformed"), "S3_WRONG_REGION", "AWS_REGION"},
		{"server error", apiError(500, "InternalError"), "", ""},
		{"no answer", errors.New("connection refused"), "", ""},
	}
	p := &Provider{bucket: "stage"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.fail("uploading k", tt.err)
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap %v", err, tt.err)
			}
			var pe *providers.Error
			if !errors.As(err, &pe) {
				if tt.slug != "" {
					t.Fatalf("%v is not a *providers.Error", err)
				}
				return
			}
			if tt.slug == "" {
				t.Fatalf("%v: want a plain wrapped error", err)
			}
			if pe.Slug != tt.slug || !strings.Contains(pe.Fix, tt.fixWord) || pe.Provider != Name || pe.RequestID != "REQ123" || pe.Status == 0 {
				t.Errorf("%+v, want slug %s and a fix naming %s", pe, tt.slug, tt.fixWord)
			}
			if !strings.HasPrefix(pe.Message, "uploading k: ") {
				t.Errorf("message %q", pe.Message)
			}
		})
	}
}

// TestCompare: an object is taken for the file's bytes when its ETag is
// their MD5, or is no MD5 at all (multipart, SSE-KMS, SSE-C) under a
// content key; an MD5 ETag of other bytes shows other bytes, and a missing
// or odd one shows nothing.
func TestCompare(t *testing.T) {
	sum := md5.Sum([]byte("hello"))
	const hexSum = "5d41402abc4b2a76b9719d911017c592"
	const other = "9dd4e461268c8034f5c8564e155c67a6"
	tests := []struct {
		name        string
		out         awss3.HeadObjectOutput
		same, known bool
	}{
		{"its MD5", awss3.HeadObjectOutput{ETag: aws.String(`"` + hexSum + `"`)}, true, true},
		{"its MD5, upper case", awss3.HeadObjectOutput{ETag: aws.String(`"` + strings.ToUpper(hexSum) + `"`)}, true, true},
		{"another MD5", awss3.HeadObjectOutput{ETag: aws.String(`"` + other + `"`)}, false, true},
		{"another MD5, SSE-S3", awss3.HeadObjectOutput{ETag: aws.String(`"` + other + `"`), ServerSideEncryption: types.ServerSideEncryptionAes256}, false, true},
		{"no ETag", awss3.HeadObjectOutput{}, false, false},
		{"not an MD5", awss3.HeadObjectOutput{ETag: aws.String(`"abc"`)}, false, false},
		{"multipart", awss3.HeadObjectOutput{ETag: aws.String(`"` + other + `-3"`)}, true, true},
		{"SSE-KMS", awss3.HeadObjectOutput{ETag: aws.String(`"` + other + `"`), ServerSideEncryption: types.ServerSideEncryptionAwsKms}, true, true},
		{"DSSE-KMS", awss3.HeadObjectOutput{ETag: aws.String(`"` + other + `"`), ServerSideEncryption: types.ServerSideEncryptionAwsKmsDsse}, true, true},
		{"SSE-C", awss3.HeadObjectOutput{ETag: aws.String(`"` + other + `"`), SSECustomerAlgorithm: aws.String("AES256")}, true, true},
	}
	for _, tt := range tests {
		if same, known := compare(&tt.out, sum); same != tt.same || known != tt.known {
			t.Errorf("%s: same %v known %v, want %v %v", tt.name, same, known, tt.same, tt.known)
		}
	}
}

func TestKeyTaken(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{apiError(412, "PreconditionFailed"), true},
		{apiError(409, "ConditionalRequestConflict"), true},
		{apiError(412, ""), true},
		{apiError(409, "BucketAlreadyExists"), false},
		{apiError(403, "AccessDenied"), false},
		{errors.New("connection refused"), false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := keyTaken(tt.err); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.err, got, tt.want)
		}
	}
}
