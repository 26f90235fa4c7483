package s3store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

var (
	// ErrNotFound: the key does not exist. Only a 404 for the key itself is
	// this; a 403, a missing bucket or a network failure never is.
	ErrNotFound = errors.New("not found")
	// ErrTooLarge: an object read whole is larger than its reader takes:
	// what is stored, not a failure of the store.
	ErrTooLarge = errors.New("object too large")
	// ErrExists: a conditional write lost to an object already there.
	ErrExists = errors.New("object already exists")
	// ErrSourceChanged: a conditional copy's source no longer has the ETag
	// asked for: it was replaced or deleted.
	ErrSourceChanged = errors.New("source object replaced or deleted since it was recorded")
	// ErrAccessDenied: the store refused the credentials or the permission.
	ErrAccessDenied = errors.New("access denied")
	// ErrNoBucket: the bucket does not exist.
	ErrNoBucket = errors.New("bucket does not exist")
	// ErrUnreachable: no answer from the endpoint.
	ErrUnreachable = errors.New("S3 endpoint unreachable")
	// ErrCredentials: no credentials could be found, or they were refused.
	ErrCredentials = errors.New("AWS credentials missing or refused")
)

// classify turns an SDK error into one that names the cause for a person,
// keeping the original in the chain.
func (s *Store) classify(op, key string, err error) error {
	if err == nil {
		return nil
	}
	where := s.URL(key)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, where, err)
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		switch code {
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%s %s: %w", op, where, ErrNotFound)
		case "NoSuchBucket":
			return fmt.Errorf("%s %s: %w: %q (check PACKAGE_ASSETS_BUCKET and the endpoint/region)", op, where, ErrNoBucket, s.bucket)
		case "AccessDenied", "Forbidden", "AllAccessDisabled", "AccountProblem":
			return fmt.Errorf("%s %s: %w (%s: the credentials lack permission; a missing key reads as 403 without s3:ListBucket): %w", op, where, ErrAccessDenied, code, err)
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "InvalidClientTokenId":
			return fmt.Errorf("%s %s: %w (%s): %w", op, where, ErrCredentials, code, err)
		case "PreconditionFailed":
			return fmt.Errorf("%s %s: %w", op, where, ErrExists)
		}
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		switch respErr.HTTPStatusCode() {
		case 404:
			// HEAD responses carry no error code: a 404 there is the key's.
			return fmt.Errorf("%s %s: %w", op, where, ErrNotFound)
		case 403:
			return fmt.Errorf("%s %s: %w (HTTP 403: wrong credentials or missing permission): %w", op, where, ErrAccessDenied, err)
		case 412:
			return fmt.Errorf("%s %s: %w", op, where, ErrExists)
		}
	}
	// The SDK reports a failed credential chain only in its message.
	if strings.Contains(err.Error(), "failed to retrieve credentials") {
		return fmt.Errorf("%s %s: %w: %w", op, where, ErrCredentials, err)
	}
	var netErr net.Error
	var urlErr *url.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	if errors.As(err, &opErr) || errors.As(err, &dnsErr) || errors.As(err, &urlErr) || errors.As(err, &netErr) {
		return fmt.Errorf("%s %s: %w (%s): %w", op, where, ErrUnreachable, endpointHint(err), err)
	}
	return fmt.Errorf("%s %s: %w", op, where, err)
}

func endpointHint(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		if u, perr := url.Parse(urlErr.URL); perr == nil {
			return "no answer from " + u.Scheme + "://" + u.Host
		}
	}
	return "check the endpoint and the network"
}
