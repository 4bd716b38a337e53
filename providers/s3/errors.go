package s3

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"

	"github.com/filestage/filestage/providers"
)

// fail wraps an S3 error. The ones a user fixes in filestage's settings
// (credentials, bucket, region) become a *providers.Error whose Fix names
// the variable to check; SDK errors carry no secret, only the operation,
// status, request ID and S3's code and message.
func (p *Provider) fail(doing string, err error) error {
	code, status := codeOf(err), statusOf(err)
	switch {
	case code == "NoSuchBucket":
		return p.noSuchBucket(doing, err)
	case code == "InvalidAccessKeyId" || code == "XAdminUserNotFound":
		return p.providerError(doing, err, http.StatusForbidden, "S3_AUTH_FAILED",
			"the storage does not know the access key ("+code+")",
			"Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: they must be a key pair of the storage at AWS_ENDPOINT_URL_S3 (or of AWS).")
	case code == "SignatureDoesNotMatch":
		return p.providerError(doing, err, http.StatusForbidden, "S3_AUTH_FAILED",
			"the storage refused the request signature (SignatureDoesNotMatch)",
			"Check AWS_SECRET_ACCESS_KEY: it must be the secret of AWS_ACCESS_KEY_ID.")
	case code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect" || code == "IllegalLocationConstraintException":
		return p.providerError(doing, err, status, "S3_WRONG_REGION",
			fmt.Sprintf("bucket %q is in another region or at another endpoint (%s)", p.bucket, code),
			"Set AWS_REGION to the bucket's region, and AWS_ENDPOINT_URL_S3 to its storage's URL if it is not AWS.")
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		// HEAD answers carry no body, so a bad key pair and a missing
		// permission both arrive as a bare 403.
		return p.providerError(doing, err, http.StatusForbidden, "S3_ACCESS_DENIED",
			fmt.Sprintf("the storage denied access to bucket %q (%s)", p.bucket, codeOr(code, status)),
			"Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and that the key may s3:GetObject, s3:PutObject and s3:ListBucket on FILESTAGE_S3_BUCKET.")
	}
	return fmt.Errorf("%s: %w", doing, err)
}

func (p *Provider) noSuchBucket(doing string, err error) error {
	return p.providerError(doing, err, http.StatusNotFound, "S3_NO_SUCH_BUCKET",
		fmt.Sprintf("bucket %q does not exist", p.bucket),
		"Check FILESTAGE_S3_BUCKET (and AWS_ENDPOINT_URL_S3 and AWS_REGION), or create the bucket.")
}

// providerError's status is the failure's, not always S3's: versitygw
// answers an unknown key with a 404, which is still an auth failure.
func (p *Provider) providerError(doing string, err error, status int, slug, msg, fix string) *providers.Error {
	return &providers.Error{
		Provider:  Name,
		Status:    status,
		Slug:      slug,
		Message:   doing + ": " + msg,
		Fix:       fix,
		RequestID: requestIDOf(err),
		Err:       err,
	}
}

// authCodes are S3's codes for a key pair the storage does not accept;
// versitygw says XAdminUserNotFound (with a 404) for an unknown key.
var authCodes = map[string]bool{"InvalidAccessKeyId": true, "XAdminUserNotFound": true, "SignatureDoesNotMatch": true}

// codeOf is S3's error code ("NoSuchBucket"), or "" when it gave none.
func codeOf(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// statusOf is the HTTP status of S3's answer, or 0 when there was none.
func statusOf(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func requestIDOf(err error) string {
	var re interface{ ServiceRequestID() string }
	if errors.As(err, &re) {
		return re.ServiceRequestID()
	}
	return ""
}

func codeOr(code string, status int) string {
	if code != "" {
		return code
	}
	return fmt.Sprint(status)
}
