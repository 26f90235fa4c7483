package s3store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/nsmithuk/s3-asset-manager/internal/words"

	"github.com/nsmithuk/s3-asset-manager/internal/pool"
)

// What prune needs beyond the other commands: a listing with times, deletes
// in batches, and the multipart uploads never completed.

// Listed is one object of a walk over a prefix.
type Listed struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
}

// Walk lists every object under prefix, in key order, handing fn one page
// (at most 1,000 objects) at a time, so that a caller keeping only what it
// needs holds no more than that.
func (s *Store) Walk(ctx context.Context, prefix string, fn func([]Listed) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.classify("list", prefix, err)
		}
		objs := make([]Listed, 0, len(page.Contents))
		for _, o := range page.Contents {
			objs = append(objs, Listed{
				Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size),
				ETag: NormalizeETag(aws.ToString(o.ETag)), LastModified: aws.ToTime(o.LastModified),
			})
		}
		if err := fn(objs); err != nil {
			return err
		}
	}
	return nil
}

// DeleteBatch is the most keys one DeleteObjects request takes.
const DeleteBatch = 1000

// deleteWorkers is how many DeleteObjects requests run at once: each is a
// thousand deletes for the store, so a few keep it busy.
const deleteWorkers = 8

// ErrNotDeleted: the store refused some keys, or an upload, alone: a
// DeleteObjects answer's per-key errors (inside a 200 answer), or an S3
// error answered to a request about one key or upload (see itemRefused).
// The others go on.
var ErrNotDeleted = errors.New("not deleted")

// StoreRefused reports whether err, from Delete or Abort, is the store's as
// a whole (unreachable, the credentials refused, a batch's request denied),
// not an item's alone (ErrNotDeleted): the next request would fail as well,
// so a caller stops. Joined errors (Delete's batches): one is enough.
func StoreRefused(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return slices.ContainsFunc(j.Unwrap(), StoreRefused)
	}
	return err != nil && !errors.Is(err, ErrNotDeleted)
}

// itemRefused reports whether err, classified, answering a request about
// one key or one upload, is that item's own refusal: an S3 error with a 4xx
// status answered for it (403 AccessDenied, as a bucket policy or Object
// Lock gives, and the like). Not the transport, the credentials, a missing
// bucket, a wrong region or endpoint, nor the store failing (5xx once the
// SDK's retries are spent): those the next request meets as well.
func itemRefused(err error) bool {
	var apiErr smithy.APIError
	var respErr *awshttp.ResponseError
	if err == nil || !errors.As(err, &apiErr) || !errors.As(err, &respErr) {
		return false
	}
	for _, whole := range []error{ErrCredentials, ErrNoBucket, ErrForeign404, ErrCertificate, ErrUnreachable, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, whole) {
			return false
		}
	}
	if bucketRegion(err) != "" || wholeStoreCodes[apiErr.ErrorCode()] {
		return false
	}
	st := respErr.HTTPStatusCode()
	// 405: a read-only gateway; 429: throttled past the SDK's retries.
	return st >= 400 && st < 500 && st != 405 && st != 429
}

// wholeStoreCodes are 4xx errors S3 gives for every request alike (the
// account, the clock, the signature), however classify names them: one
// key's answer with one of these is no reason to go on to the next.
var wholeStoreCodes = map[string]bool{
	"AllAccessDisabled": true, "AccountProblem": true, "RequestTimeTooSkewed": true,
	"AuthorizationHeaderMalformed": true, "InvalidAccessKeyId": true, "SignatureDoesNotMatch": true,
	"ExpiredToken": true, "InvalidToken": true, "TokenRefreshRequired": true, "SlowDown": true,
}

// refusal marks an item's own refusal: it reads as the error it wraps, and
// is ErrNotDeleted, so that StoreRefused lets the others go on.
type refusal struct{ error }

func (r refusal) Unwrap() error        { return r.error }
func (r refusal) Is(target error) bool { return target == ErrNotDeleted }

// Delete removes keys, DeleteBatch a request, a few requests at once. A key
// that is not there counts as deleted (S3 says so itself). It returns the
// keys the store confirmed deleted, whatever else failed, so that a caller
// deleting in steps (records before objects) goes on only with those;
// done, when set, is given each batch's confirmed keys (from several
// goroutines at once).
func (s *Store) Delete(ctx context.Context, keys []string, done func(keys []string)) (deleted []string, err error) {
	batches := (len(keys) + DeleteBatch - 1) / DeleteBatch
	ok := make([][]string, batches)
	var refused []error
	refusedCh := make(chan error, batches)
	err = pool.Run(ctx, deleteWorkers, batches, func(ctx context.Context, b int) error {
		batch := keys[b*DeleteBatch : min(len(keys), (b+1)*DeleteBatch)]
		got, err := s.deleteBatch(ctx, batch)
		ok[b] = got
		if done != nil && len(got) > 0 {
			done(got)
		}
		if err != nil && !StoreRefused(err) {
			refusedCh <- err // the other batches go on
			return nil
		}
		return err
	})
	close(refusedCh)
	for e := range refusedCh {
		refused = append(refused, e)
	}
	for _, b := range ok {
		deleted = append(deleted, b...)
	}
	return deleted, errors.Join(append([]error{err}, refused...)...)
}

// deleteBatch deletes at most DeleteBatch keys in one request (Quiet: the
// store answers only the keys it failed to delete). Keys answered with an
// error S3 says to try again (InternalError, SlowDown: S3 gives them now
// and then in a large delete) are asked again after a backoff, as the SDK
// retries a request, which it does not do for the keys of a 200 answer;
// the others are refused, and reported.
func (s *Store) deleteBatch(ctx context.Context, keys []string) ([]string, error) {
	attempts := s.client.Options().Retryer.MaxAttempts()
	backoff := retry.NewExponentialJitterBackoff(10 * time.Second)
	total := len(keys)
	var deleted []string
	var refused []types.Error
	for attempt := 1; ; attempt++ {
		got, failed, err := s.deleteOnce(ctx, keys)
		deleted = append(deleted, got...)
		if err != nil {
			return deleted, err
		}
		keys = nil
		for _, e := range failed {
			if attempt < attempts && transientKeyError(aws.ToString(e.Code)) {
				keys = append(keys, aws.ToString(e.Key))
			} else {
				refused = append(refused, e)
			}
		}
		if len(keys) == 0 {
			break
		}
		wait, _ := backoff.BackoffDelay(attempt, nil)
		if err := sleepCtx(ctx, s.clock, wait); err != nil {
			return deleted, err
		}
	}
	if len(refused) == 0 {
		return deleted, nil
	}
	var first []string
	for _, e := range refused[:min(3, len(refused))] {
		first = append(first, fmt.Sprintf("%s (%s)", s.shown(aws.ToString(e.Key)), words.Printable(aws.ToString(e.Code)+": "+aws.ToString(e.Message))))
	}
	return deleted, fmt.Errorf("delete: %d of %s %w: %s", len(refused), words.Count(total, "key", "keys"), ErrNotDeleted, strings.Join(first, "; "))
}

// transientKeyError reports a per-key error of a DeleteObjects answer that
// is worth asking again: the codes the SDK retries a request for, and S3's
// 500 and 503 ones.
func transientKeyError(code string) bool {
	_, retryable := retry.DefaultRetryableErrorCodes[code]
	_, throttled := retry.DefaultThrottleErrorCodes[code]
	return retryable || throttled || code == "InternalError" || code == "ServiceUnavailable"
}

// deleteOnce sends one DeleteObjects of keys and returns the keys deleted
// and the per-key errors (a key already gone counts as deleted).
func (s *Store) deleteOnce(ctx context.Context, keys []string) ([]string, []types.Error, error) {
	if s.singleDeletes.Load() {
		return s.deleteEach(ctx, keys)
	}
	objs := make([]types.ObjectIdentifier, len(keys))
	for i := range keys {
		objs[i] = types.ObjectIdentifier{Key: &keys[i]}
	}
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: &s.bucket,
		Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
	}, withContentMD5)
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NotImplemented" {
		// Google Cloud Storage's XML API, and some gateways, have no
		// multi-object delete: one request a key, for the rest of the run.
		s.singleDeletes.Store(true)
		return s.deleteEach(ctx, keys)
	}
	if err != nil {
		return nil, nil, s.classify("delete", keys[0]+fmt.Sprintf(" and %d more keys", len(keys)-1), err)
	}
	isFailed := make(map[string]bool, len(out.Errors))
	var failed []types.Error
	for _, e := range out.Errors {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue // gone already: what was asked
		}
		isFailed[aws.ToString(e.Key)] = true
		failed = append(failed, e)
	}
	if len(failed) == 0 {
		return keys, nil, nil
	}
	deleted := make([]string, 0, len(keys)-len(failed))
	for _, k := range keys {
		if !isFailed[k] {
			deleted = append(deleted, k)
		}
	}
	return deleted, failed, nil
}

// withContentMD5 makes a DeleteObjects carry Content-MD5 in place of the
// SDK's CRC32 checksum: S3 documents Content-MD5 as required for it, and
// stores that hold to that (MinIO before 2025, Oracle's) refuse the CRC32
// alone with 400 MissingContentMD5, as others refuse any x-amz-checksum
// header. AWS takes Content-MD5, and every store understands it.
func withContentMD5(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		st.Finalize.Remove("AWSChecksum:ComputeInputPayloadChecksum") // absent is as good
		return smithyhttp.AddContentChecksumMiddleware(st)
	})
}

// deleteEach deletes keys one request each, in parallel (the store's bound
// on requests in flight applies), and returns those deleted and, as a
// DeleteObjects answer does, the keys the store refused alone (a 403 for
// one key): the others go on. Only an error the next request would meet as
// well (transport, credentials) stops the rest.
func (s *Store) deleteEach(ctx context.Context, keys []string) ([]string, []types.Error, error) {
	done := make([]bool, len(keys))
	refused := make([]*types.Error, len(keys))
	err := pool.Run(ctx, 64, len(keys), func(ctx context.Context, i int) error {
		k := keys[i]
		_, raw := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &k})
		err := s.classify("delete", k, raw)
		switch {
		case err == nil || errors.Is(err, ErrNotFound):
			done[i] = true
		case itemRefused(err):
			var apiErr smithy.APIError
			errors.As(raw, &apiErr)
			refused[i] = &types.Error{Key: &keys[i], Code: aws.String(apiErr.ErrorCode()), Message: aws.String(apiErr.ErrorMessage())}
		default:
			return err
		}
		return nil
	})
	var deleted []string
	var failed []types.Error
	for i, k := range keys {
		if done[i] {
			deleted = append(deleted, k)
		} else if refused[i] != nil {
			failed = append(failed, *refused[i])
		}
	}
	return deleted, failed, err
}

// Upload is a multipart upload never completed nor aborted.
type Upload struct {
	Key       string
	ID        string
	Initiated time.Time
}

// Uploads lists the multipart uploads in progress under prefix, every page.
// The bucket's whole list is asked for and filtered here: MinIO answers a
// prefix only when it is an object's whole key (an empty list otherwise).
func (s *Store) Uploads(ctx context.Context, prefix string) ([]Upload, error) {
	var ups []Upload
	in := &s3.ListMultipartUploadsInput{Bucket: &s.bucket}
	for {
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return nil, s.classify("list multipart uploads under", prefix, err)
		}
		for _, u := range out.Uploads {
			if !strings.HasPrefix(aws.ToString(u.Key), prefix) {
				continue
			}
			ups = append(ups, Upload{Key: aws.ToString(u.Key), ID: aws.ToString(u.UploadId), Initiated: aws.ToTime(u.Initiated)})
		}
		if !aws.ToBool(out.IsTruncated) || (aws.ToString(out.NextKeyMarker) == "" && aws.ToString(out.NextUploadIdMarker) == "") {
			return ups, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// Abort ends a multipart upload and frees its parts. One already gone
// (completed or aborted meanwhile) is not an error.
func (s *Store) Abort(ctx context.Context, u Upload) error {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &u.Key, UploadId: &u.ID})
	var nsu *types.NoSuchUpload
	if errors.As(err, &nsu) {
		return nil
	}
	err = s.classify("abort multipart upload of", u.Key, err)
	if itemRefused(err) {
		return refusal{err} // this upload's alone: the others go on
	}
	return err
}
