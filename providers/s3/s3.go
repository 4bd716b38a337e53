// Package s3 stores files in an S3-compatible bucket (AWS S3, MinIO, Ceph,
// versitygw ...). Keys are content-addressed, and presigned PUTs sign the
// Content-Type, Content-MD5 and length, so the store itself refuses any
// other bytes: filestage never has to check an upload it did not send.
package s3

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/filestage/filestage/providers"
)

// Name is the provider's registry name.
const Name = "s3"

// URLTTL is how long a presigned upload URL stays valid.
const URLTTL = time.Hour

const (
	// maxPresignTTL is the longest expiry SigV4 query signing allows.
	maxPresignTTL = 7 * 24 * time.Hour
	// maxPut is the most one PUT may carry: a presigned URL cannot take
	// more, and filestage's own uploads of more go in parts.
	maxPut = 5 << 30
	// partSize is the smallest part of a multipart upload; it grows for
	// very large files so that no upload needs more than maxParts.
	partSize = 64 << 20
	maxParts = 10_000
	// defaultRegion is what self-hosted servers expect when none is
	// configured; SigV4 cannot sign without one.
	defaultRegion = "us-east-1"
)

// Provider stages files in one bucket.
type Provider struct {
	client  *awss3.Client
	presign *awss3.PresignClient
	bucket  string
	prefix  string
	// ttl, putMax and partSize are the constants above; tests shrink
	// them. putMax is both RequestUpload's limit and the size above which
	// Store and Upload send the bytes in parts.
	ttl    time.Duration
	putMax int64
	// downloadTTL is how long a presigned GET works.
	downloadTTL time.Duration
	partSize    int64
	// bucketSeen is set once the bucket is known to exist; until then a
	// missing key is double-checked against a missing bucket.
	bucketSeen atomic.Bool
}

var _ providers.Storer = (*Provider)(nil)

// Open is the provider's registry factory.
func Open(ctx context.Context, s providers.Settings) (providers.Provider, error) {
	return providers.Opened(New(ctx, s))
}

// New configures the client from s.Getenv: FILESTAGE_S3_BUCKET
// (required), FILESTAGE_S3_PREFIX, FILESTAGE_S3_PATH_STYLE, and the AWS
// SDK's standard variables. It makes no request, so filestage starts even
// when the storage is briefly unreachable.
func New(ctx context.Context, s providers.Settings) (*Provider, error) {
	bucket := s.Env("FILESTAGE_S3_BUCKET")
	if bucket == "" {
		return nil, errors.New("FILESTAGE_S3_BUCKET is required: set it to the name of the bucket to stage files in")
	}
	prefix, err := cleanPrefix(s.Env("FILESTAGE_S3_PREFIX"))
	if err != nil {
		return nil, err
	}
	var pathStyle bool
	if v := s.Env("FILESTAGE_S3_PATH_STYLE"); v != "" {
		if pathStyle, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("FILESTAGE_S3_PATH_STYLE=%q is not a boolean: use true or false", v)
		}
	}
	var endpoint string
	for _, name := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		if endpoint = s.Env(name); endpoint == "" {
			continue
		}
		if !providers.HTTPURL(endpoint) {
			// The value is not echoed: it could carry credentials.
			return nil, fmt.Errorf("%s must be an absolute http(s) URL, such as http://127.0.0.1:9000", name)
		}
		break
	}

	// Values read through s.Getenv are passed explicitly, so they win over
	// the process environment; whatever is not set falls back to the SDK's
	// chain (shared config files, SSO, instance roles ...).
	var opts []func(*config.LoadOptions) error
	if r := cmp.Or(s.Env("AWS_REGION"), s.Env("AWS_DEFAULT_REGION")); r != "" {
		opts = append(opts, config.WithRegion(r))
	}
	if p := s.Env("AWS_PROFILE"); p != "" {
		opts = append(opts, config.WithSharedConfigProfile(p))
	}
	id, secret := s.Env("AWS_ACCESS_KEY_ID"), s.Env("AWS_SECRET_ACCESS_KEY")
	switch {
	case id != "" && secret != "":
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(id, secret, s.Env("AWS_SESSION_TOKEN"))))
	case id != "" || secret != "":
		return nil, errors.New("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither")
	}
	// Not s.HTTP: the SDK retries on its own, and only its own client can
	// take the CA bundle of AWS_CA_BUNDLE. The header timeout is s.HTTP's.
	opts = append(opts, config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.ResponseHeaderTimeout = 60 * time.Second
		// Bodies go out in 256 KiB writes, not 4 KiB ones: 64 times
		// fewer system calls on the path every uploaded byte takes.
		t.WriteBufferSize = 256 << 10
	})))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	client := awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		o.UsePathStyle = pathStyle
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		// Otherwise the SDK adds a CRC32 of the body it signs: for a
		// presigned PUT that is the CRC of an empty body, which breaks
		// every plain upload. Content-MD5 already protects the bytes.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &Provider{
		client:      client,
		presign:     awss3.NewPresignClient(client),
		bucket:      bucket,
		prefix:      prefix,
		ttl:         URLTTL,
		downloadTTL: cmp.Or(s.DownloadTTL, time.Hour),
		putMax:      maxPut,
		partSize:    partSize,
	}, nil
}

// cleanPrefix makes the key prefix a folder: "uploads" and "/uploads/"
// both become "uploads/", so keys never run into the prefix's last word.
func cleanPrefix(p string) (string, error) {
	p = strings.Trim(strings.TrimSpace(p), "/")
	if p == "" {
		return "", nil
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("FILESTAGE_S3_PREFIX=%q has an empty, . or .. segment", p)
		}
	}
	if len(p) > 512 {
		return "", errors.New("FILESTAGE_S3_PREFIX is longer than 512 bytes")
	}
	return p + "/", nil
}

// objectKey is the content address under the configured prefix.
func (p *Provider) objectKey(req providers.UploadRequest) string {
	return p.prefix + providers.ContentKey(req)
}

// RequestUpload presigns a PUT bound to the key, type, MD5 and, when known,
// size, unless the bucket already holds these bytes: then the slot is
// existing and carries no URL. One PUT carries at most 5 GiB, so a larger
// file is refused: only Store (stage_connector_file) uploads it, in parts.
func (p *Provider) RequestUpload(ctx context.Context, req providers.UploadRequest) (providers.Slot, error) {
	if req.Size > p.putMax {
		return providers.Slot{}, &providers.Error{Provider: Name, Status: http.StatusRequestEntityTooLarge, Slug: "FILE_TOO_LARGE",
			Message: fmt.Sprintf("%d bytes is more than one presigned S3 PUT can carry (%d bytes)", req.Size, p.putMax),
			Fix:     "Stage the file from a URL with stage_connector_file instead: it uploads files over 5 GiB to S3 in parts."}
	}
	key := p.objectKey(req)
	typ, other, err := p.slotType(ctx, key, req.MD5)
	switch {
	case err != nil:
		return providers.Slot{}, err
	case typ == providers.SlotExisting:
		return p.readBack(ctx, existing(key, req.MD5), req.Filename), nil
	case other:
		// A URL S3 would refuse (If-None-Match) is no use to anyone.
		return providers.Slot{}, p.otherBytes(key, nil)
	}
	slot, err := p.presignPut(ctx, key, req)
	if err != nil {
		return providers.Slot{}, err
	}
	slot.Type = typ
	return p.readBack(ctx, slot, req.Filename), nil
}

// readBack adds a presigned GET of the slot's object to it, offering the
// object under name. Presigning makes no request, and a slot is good
// without its download URL, so a failure only leaves it out.
func (p *Provider) readBack(ctx context.Context, slot providers.Slot, name string) providers.Slot {
	ttl := min(p.downloadTTL, maxPresignTTL)
	in := &awss3.GetObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(slot.Key)}
	if name != "" {
		in.ResponseContentDisposition = aws.String(providers.ContentDisposition(name))
	}
	expires := time.Now().Truncate(time.Second).Add(ttl)
	if signed, err := p.presign.PresignGetObject(ctx, in, awss3.WithPresignExpires(ttl)); err == nil {
		slot.DownloadURL, slot.DownloadExpiresAt = signed.URL, expires
	}
	return slot
}

// existing is the slot of bytes the bucket holds under key. Its headers are
// empty rather than nil: a tool answer must carry an object there.
func existing(key string, sum [16]byte) providers.Slot {
	return providers.Slot{ID: slotID(sum), Key: key, Headers: map[string]string{}, Type: providers.SlotExisting, StorageBackend: Name}
}

// noneMatch is the If-None-Match of every upload: S3 stores the bytes only
// if nothing is stored under the key yet. That keeps stored objects
// immutable, and makes a presigned URL single-use with no state kept: a
// replay, or an upload racing another, is refused with a 412. Servers
// without conditional writes ignore the header and store as before.
const noneMatch = "*"

// presignPut signs the PUT; it makes no request.
func (p *Provider) presignPut(ctx context.Context, key string, req providers.UploadRequest) (providers.Slot, error) {
	ttl := min(p.ttl, maxPresignTTL)
	// The SDK stamps the URL after this, to the second, so the URL lives
	// at least until expires.
	expires := time.Now().Truncate(time.Second).Add(ttl)
	headers := map[string]string{"Content-MD5": providers.ContentMD5(req.MD5), "If-None-Match": noneMatch}
	// No ChecksumAlgorithm, ever: it would sign a checksum header the
	// uploader does not know to send.
	in := &awss3.PutObjectInput{
		Bucket:      aws.String(p.bucket),
		Key:         aws.String(key),
		ContentMD5:  aws.String(headers["Content-MD5"]),
		IfNoneMatch: aws.String(noneMatch),
	}
	if req.Mimetype != "" {
		in.ContentType = aws.String(req.Mimetype)
		headers["Content-Type"] = req.Mimetype
	}
	if req.Size >= 0 {
		// Signed as content-length; HTTP clients set the header themselves.
		in.ContentLength = aws.Int64(req.Size)
	}
	signed, err := p.presign.PresignPutObject(ctx, in, awss3.WithPresignExpires(ttl))
	if err != nil {
		return providers.Slot{}, fmt.Errorf("presigning the upload of %s: %w", key, err)
	}
	return providers.Slot{
		ID:             slotID(req.MD5),
		Key:            key,
		URL:            signed.URL,
		Method:         signed.Method,
		Headers:        headers,
		ExpiresAt:      expires,
		Type:           providers.SlotNew,
		StorageBackend: Name,
	}, nil
}

func slotID(sum [16]byte) string { return "s3_" + hex.EncodeToString(sum[:8]) }

// Store is the staging path: unless the bucket already holds the bytes, it
// uploads them itself, in parts when they are more than one PUT may carry.
// It never replaces an object: other bytes under the key fail it, before
// any upload when their ETag shows them, else when S3 refuses the upload
// for its If-None-Match. Nothing is presigned, so the slot has no URL.
func (p *Provider) Store(ctx context.Context, req providers.UploadRequest, body providers.Body) (providers.Slot, error) {
	key := p.objectKey(req)
	typ, other, err := p.slotType(ctx, key, req.MD5)
	switch {
	case err != nil:
		return providers.Slot{}, err
	case typ == providers.SlotExisting:
		return p.readBack(ctx, existing(key, req.MD5), req.Filename), nil
	case other:
		return providers.Slot{}, p.otherBytes(key, nil)
	}
	err = p.upload(ctx, key, req.Mimetype, body)
	if err == nil {
		return p.readBack(ctx, providers.Slot{ID: slotID(req.MD5), Key: key, Type: providers.SlotNew, StorageBackend: Name}, req.Filename), nil
	}
	// Refused for its If-None-Match (or cut off: versitygw resets the
	// connection of a refused body), the upload may have lost a race to
	// another upload of these bytes, which then are stored.
	if again, _, herr := p.slotType(ctx, key, req.MD5); herr == nil && again == providers.SlotExisting {
		return p.readBack(ctx, existing(key, req.MD5), req.Filename), nil
	}
	if keyTaken(err) {
		return providers.Slot{}, p.otherBytes(key, err)
	}
	return providers.Slot{}, err
}

// otherBytes is the error of an upload to a content key that holds other
// bytes: only something behind filestage's back could have put them there.
func (p *Provider) otherBytes(key string, err error) *providers.Error {
	return p.providerError("uploading "+key, err, http.StatusConflict, "S3_OBJECT_EXISTS",
		"the bucket holds other bytes under this content key (their ETag is not the file's MD5), and stored objects are never replaced",
		"Check the object "+key+" in FILESTAGE_S3_BUCKET: a content-addressed key should only ever hold the bytes of its MD5. Remove it if it is stale, or set FILESTAGE_S3_PREFIX to stage under other keys.")
}

// keyTaken reports whether S3 refused an upload because of its
// If-None-Match: the key was taken (412), or another conditional write to
// it was under way (409).
func keyTaken(err error) bool {
	switch codeOf(err) {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return true
	}
	return statusOf(err) == http.StatusPreconditionFailed
}

// slotType says whether the bucket holds nothing under key (new), these
// bytes (existing) or something else (update); other is set when the
// object's ETag shows it is other bytes.
func (p *Provider) slotType(ctx context.Context, key string, sum [16]byte) (typ providers.SlotType, other bool, err error) {
	out, err := p.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(key)})
	if err != nil {
		if statusOf(err) != http.StatusNotFound {
			return "", false, p.fail("checking for "+key, err)
		}
		if err := p.checkBucket(ctx); err != nil {
			return "", false, err
		}
		return providers.SlotNew, false, nil
	}
	p.bucketSeen.Store(true)
	same, known := compare(out, sum)
	if same {
		return providers.SlotExisting, false, nil
	}
	return providers.SlotUpdate, known, nil
}

// compare says whether the object HEAD described is the bytes of MD5 sum,
// and whether its ETag could tell (an answer without one, from something
// in between, say, cannot). Where the ETag is no MD5 to compare (a
// multipart upload's "<md5 of part md5s>-<parts>", or an object encrypted
// with SSE-KMS or SSE-C) the key, which is content-addressed, is trusted:
// uploads never replace it.
func compare(out *awss3.HeadObjectOutput, sum [16]byte) (same, known bool) {
	etag := strings.Trim(aws.ToString(out.ETag), `"`)
	switch {
	case strings.Contains(etag, "-"),
		out.SSECustomerAlgorithm != nil,
		out.ServerSideEncryption == types.ServerSideEncryptionAwsKms,
		out.ServerSideEncryption == types.ServerSideEncryptionAwsKmsDsse:
		return true, true
	}
	if b, err := hex.DecodeString(etag); err != nil || len(b) != len(sum) {
		return false, false
	}
	return strings.EqualFold(etag, hex.EncodeToString(sum[:])), true
}

// checkBucket tells a missing bucket from a missing key: HEAD answers both
// with a bare 404 (and versitygw an unknown access key too), so a LIST, whose
// answer says which, settles it. Once the bucket has been seen it is not
// asked again; a bucket deleted later still fails the upload clearly.
func (p *Provider) checkBucket(ctx context.Context) error {
	if p.bucketSeen.Load() {
		return nil
	}
	_, err := p.client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(p.bucket), MaxKeys: aws.Int32(1)})
	if err == nil {
		p.bucketSeen.Store(true)
		return nil
	}
	if authCodes[codeOf(err)] || codeOf(err) == "NoSuchBucket" {
		return p.fail("checking the bucket", err)
	}
	// Not allowed to list, say: the upload will tell.
	return nil
}

// Upload stores the body under the slot's key, as the Content-Type the
// slot's headers name.
func (p *Provider) Upload(ctx context.Context, slot providers.Slot, body providers.Body) error {
	return p.upload(ctx, slot.Key, slot.Headers["Content-Type"], body)
}

// upload stores the body under key, in parts when it is larger than one
// PUT may be. Every request carries Content-MD5, so S3 stores nothing but
// the hashed bytes.
func (p *Provider) upload(ctx context.Context, key, mimetype string, body providers.Body) error {
	var contentType *string
	if mimetype != "" {
		contentType = aws.String(mimetype)
	}
	if body.Size > p.putMax {
		return p.uploadParts(ctx, key, contentType, body)
	}
	_, err := p.client.PutObject(ctx, &awss3.PutObjectInput{
		Bucket: aws.String(p.bucket),
		Key:    aws.String(key),
		// A ReadSeeker: the SDK rewinds it for every retry.
		Body:          body.Reader(),
		ContentLength: aws.Int64(body.Size),
		ContentMD5:    aws.String(providers.ContentMD5(body.MD5)),
		ContentType:   contentType,
		IfNoneMatch:   aws.String(noneMatch),
	}, unsignedPayload)
	if err != nil {
		return p.fail("uploading "+key, err)
	}
	p.bucketSeen.Store(true)
	return p.checkStored(ctx, key, body.Size)
}

// checkStored asks the bucket whether it holds key at size: an answer of
// 200 from something in between (a proxy, a gateway) proves nothing.
func (p *Provider) checkStored(ctx context.Context, key string, size int64) error {
	head, err := p.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(key)})
	if err != nil {
		return p.fail("checking the upload of "+key, err)
	}
	if head.ContentLength != nil && *head.ContentLength != size {
		return fmt.Errorf("%w: S3 holds %d bytes under %s, %d were sent", providers.ErrNotStored, *head.ContentLength, key, size)
	}
	return nil
}

// unsignedPayload signs a body upload without hashing the body with
// SHA-256 first, as presigned URLs do: that would be one more pass over
// every byte, and Content-MD5 already makes S3 refuse any other bytes.
func unsignedPayload(o *awss3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

// uploadParts is a multipart upload, one part after the other, each with its
// own Content-MD5. A failed upload is aborted so its parts do not linger.
func (p *Provider) uploadParts(ctx context.Context, key string, contentType *string, body providers.Body) (err error) {
	created, err := p.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{
		Bucket: aws.String(p.bucket), Key: aws.String(key), ContentType: contentType,
	})
	if err != nil {
		return p.fail("starting the multipart upload of "+key, err)
	}
	defer func() {
		if err == nil {
			return
		}
		// Also when ctx has ended: the parts would take space until a
		// lifecycle rule removes them.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		p.client.AbortMultipartUpload(actx, &awss3.AbortMultipartUploadInput{
			Bucket: aws.String(p.bucket), Key: aws.String(key), UploadId: created.UploadId,
		})
	}()

	size := max(p.partSize, (body.Size+maxParts-1)/maxParts)
	var parts []types.CompletedPart
	// Each part's Content-MD5 binds it to the bytes hashed here; whole
	// binds the parts to the MD5 the caller computed, in case the source
	// (a user's file) changed since.
	whole := md5.New()
	for n, off := int32(1), int64(0); off < body.Size; n, off = n+1, off+size {
		part := io.NewSectionReader(body.Data, off, min(size, body.Size-off))
		h := md5.New()
		if _, err := io.Copy(io.MultiWriter(h, whole), part); err != nil {
			return fmt.Errorf("reading part %d of %s: %w", n, key, err)
		}
		var sum [16]byte
		h.Sum(sum[:0])
		out, err := p.client.UploadPart(ctx, &awss3.UploadPartInput{
			Bucket:        aws.String(p.bucket),
			Key:           aws.String(key),
			UploadId:      created.UploadId,
			PartNumber:    aws.Int32(n),
			Body:          io.NewSectionReader(body.Data, off, part.Size()),
			ContentLength: aws.Int64(part.Size()),
			ContentMD5:    aws.String(providers.ContentMD5(sum)),
		}, unsignedPayload)
		if err != nil {
			return p.fail(fmt.Sprintf("uploading part %d of %s", n, key), err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	}
	if got := whole.Sum(nil); !bytes.Equal(got, body.MD5[:]) {
		return fmt.Errorf("the bytes of %s changed while they were uploaded (MD5 %x, hashed as %x): nothing was stored", key, got, body.MD5)
	}
	_, err = p.client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket:          aws.String(p.bucket),
		Key:             aws.String(key),
		UploadId:        created.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		IfNoneMatch:     aws.String(noneMatch),
	})
	if err != nil {
		return p.fail("completing the multipart upload of "+key, err)
	}
	if err := p.checkStored(ctx, key, body.Size); err != nil {
		return err
	}
	p.bucketSeen.Store(true)
	return nil
}
