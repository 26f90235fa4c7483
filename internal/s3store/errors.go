package s3store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/nsmithuk/s3-asset-manager/internal/words"
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
	// ErrConflict: a conditional write met another one in progress on the
	// same key (AWS: 409 ConditionalRequestConflict) on every attempt.
	ErrConflict = errors.New("a concurrent conditional write to the same key was still in progress")
	// ErrForeign404: a 404 that is not S3 saying the key does not exist: no
	// NoSuchKey code, as a web server, a proxy or a wrong endpoint answers.
	ErrForeign404 = errors.New("HTTP 404 without NoSuchKey")
	// ErrConfig: the AWS configuration (variables, config files) is wrong or
	// incomplete; found before any request is sent.
	ErrConfig = errors.New("AWS configuration")
	// ErrLocalFile: a download's own file could not be created, written or
	// put in place (a full disk, a directory at its name): the local
	// directory's problem, not S3's.
	ErrLocalFile = errors.New("local file")
	// ErrCertificate: the endpoint's TLS certificate is not trusted (unknown
	// authority, another host's, expired). Not retried: it will not change.
	ErrCertificate = errors.New("the endpoint's TLS certificate is not trusted")
)

// classify turns an SDK error into one that names the cause for a person,
// keeping the original in the chain.
func (s *Store) classify(op, key string, err error) error {
	if err == nil {
		return nil
	}
	where := s.shown(key)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, where, err)
	}
	// Before the network errors below: it is one of them, but retrying or
	// calling it "unreachable" misleads.
	if isCertificateError(err) {
		return fmt.Errorf("%s %s: %w (for a private CA, set AWS_CA_BUNDLE to its PEM file): %w", op, where, ErrCertificate, err)
	}
	var apiErr smithy.APIError
	code := ""
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
		switch code {
		case "NoSuchKey":
			if strings.HasPrefix(op, "list") {
				// A listing has no key to miss: the request reached
				// something else, as one to an endpoint with a path does
				// (the path is taken for the bucket, the bucket for a key).
				return shownAs{fmt.Sprintf("%s %s: %v: the endpoint answered a listing with NoSuchKey, as S3 answers a request for an object;"+
					" check PACKAGE_ASSETS_ENDPOINT (the S3 API's address, with no path) and any proxy in between", op, where, ErrForeign404),
					errors.Join(ErrForeign404, err)}
			}
			return fmt.Errorf("%s %s: %w", op, where, ErrNotFound)
		case "ConditionalRequestConflict":
			return fmt.Errorf("%s %s: %w (409 on every attempt: run it again): %w", op, where, ErrConflict, apiCause(err))
		case "NoSuchBucket":
			return fmt.Errorf("%s %s: %w: %q (check PACKAGE_ASSETS_BUCKET and the endpoint/region)", op, where, ErrNoBucket, s.bucket)
		case "AccessDenied", "Forbidden", "AllAccessDisabled", "AccountProblem":
			return fmt.Errorf("%s %s: %w (the credentials lack permission; a missing key reads as 403 without s3:ListBucket): %w", op, where, ErrAccessDenied, apiCause(err))
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "InvalidClientTokenId":
			return fmt.Errorf("%s %s: %w: %w", op, where, ErrCredentials, apiCause(err))
		case "PreconditionFailed":
			return fmt.Errorf("%s %s: %w", op, where, ErrExists)
		case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
			if r := bucketRegion(err); r != "" {
				return s.wrongRegion(op, where, r, err)
			}
		}
	}
	// A HEAD's 301 has no body, so no code: the header still says where.
	if r := bucketRegion(err); r != "" {
		var respErr *awshttp.ResponseError
		if errors.As(err, &respErr) && respErr.HTTPStatusCode() == 301 {
			return s.wrongRegion(op, where, r, err)
		}
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		switch respErr.HTTPStatusCode() {
		case 404:
			// HEAD responses carry no body, so no error code: a 404 there is
			// the key's (the SDK names it "NotFound").
			if op == "head" {
				return fmt.Errorf("%s %s: %w", op, where, ErrNotFound)
			}
			// Elsewhere S3 says which thing is missing (NoSuchKey,
			// NoSuchBucket, NoSuchUpload, ...). A 404 with no code, or one
			// the SDK made up ("NotFound" from the status, "UnknownError"),
			// is not S3's.
			if code == "" || code == "NotFound" || code == "UnknownError" {
				// The SDK's message (the page's XML syntax error) adds nothing.
				return shownAs{fmt.Sprintf("%s %s: %v: the endpoint answered 404 as a web server or proxy does, not as S3 does;"+
					" check PACKAGE_ASSETS_ENDPOINT (the S3 API's address, with no path) and any proxy in between", op, where, ErrForeign404),
					errors.Join(ErrForeign404, err)}
			}
		case 403:
			return fmt.Errorf("%s %s: %w (HTTP 403: wrong credentials or missing permission): %w", op, where, ErrAccessDenied, apiCause(err))
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
		// The SDK's message repeats the operation, the URL and empty
		// request ids around the cause: say the cause, once.
		var unreachable error = ErrUnreachable
		service := failedService(err)
		if service == "ec2imds" {
			// Instance metadata is the last place the SDK looks for
			// credentials: none were found before it, and it does not answer.
			return fmt.Errorf("%s %s: %w: none found (no keys, profile or web identity; instance metadata unreachable, %s): %w",
				op, where, ErrCredentials, endpointHint(err), netCause(err))
		}
		if service != "" && service != "S3" {
			// The credentials' service (STS, assuming a role), not the
			// bucket's, gave no answer: say which, or the S3 endpoint is
			// suspected while the URL shown is another's.
			unreachable = shownAs{service + " endpoint unreachable", ErrUnreachable}
		}
		return fmt.Errorf("%s %s: %w (%s): %w", op, where, unreachable, endpointHint(err), netCause(err))
	}
	// No credentials anywhere, the instance metadata's answer (no role, or
	// disabled) the last of the chain's failures: the SDK says so as its
	// cache's refresh.
	if strings.Contains(err.Error(), "failed to refresh cached credentials") {
		return fmt.Errorf("%s %s: %w: %w", op, where, ErrCredentials, err)
	}
	return fmt.Errorf("%s %s: %w", op, where, err)
}

// wrongRegion: the bucket is in another region than the one the requests
// were signed for. The original tool's boto3 followed S3's redirect there;
// the Go SDK does not, so the error says the setting that fixes it. Where
// the region named is the one signed for already, the endpoint is another
// region's (a global or regional AWS endpoint left in the settings).
func (s *Store) wrongRegion(op, where, region string, err error) error {
	if region == s.region {
		return fmt.Errorf("%s %s: the endpoint says the bucket is in region %s, the region the requests are signed for:"+
			" the endpoint is another region's; check PACKAGE_ASSETS_ENDPOINT and AWS_ENDPOINT_URL(_S3) (unset them for AWS): %w", op, where, region, apiCause(err))
	}
	return fmt.Errorf("%s %s: the bucket is in region %s (the requests are signed for %s): set AWS_REGION=%s"+
		" (requests are not redirected to the bucket's region): %w", op, where, region, s.region, region, apiCause(err))
}

// expectingRegion finds the region in S3's AuthorizationHeaderMalformed
// message ("the region 'eu-west-2' is wrong; expecting 'us-east-1'").
var expectingRegion = regexp.MustCompile(`expecting '([a-z0-9-]{1,40})'`)

// bucketRegion is the bucket's region as S3 gives it with a wrong-region
// answer: the x-amz-bucket-region header, or its message; "" if neither.
func bucketRegion(err error) string {
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) && respErr.Response != nil {
		if r := respErr.Response.Header.Get("x-amz-bucket-region"); validRegion(r) {
			return r
		}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if m := expectingRegion.FindStringSubmatch(apiErr.ErrorMessage()); m != nil {
			return m[1]
		}
	}
	return ""
}

// validRegion: a region name as AWS and S3-compatible stores spell them,
// so that a header's value is never printed raw.
func validRegion(r string) bool {
	return r != "" && len(r) <= 40 && strings.Trim(r, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// failedService is the service of the innermost SDK operation in err's
// chain ("S3", or "STS" when fetching credentials failed), "" for none.
func failedService(err error) string {
	service := ""
	for err != nil {
		var op *smithy.OperationError
		if !errors.As(err, &op) {
			break
		}
		service, err = op.ServiceID, op.Err
	}
	return service
}

// netCause is err shown as its network cause alone ("dial tcp
// 127.0.0.1:9000: connect: connection refused"), with the attempts made;
// err stays in the chain for errors.Is and errors.As.
func netCause(err error) error {
	var (
		opErr  *net.OpError
		dnsErr *net.DNSError
		urlErr *url.Error
		cause  string
	)
	switch {
	case errors.As(err, &opErr):
		cause = opErr.Error()
	case errors.As(err, &dnsErr):
		cause = dnsErr.Error()
	case errors.As(err, &urlErr):
		cause = urlErr.Err.Error()
	default:
		return err
	}
	var attempts *retry.MaxAttemptsError
	if errors.As(err, &attempts) {
		cause += " (" + words.Count(attempts.Attempt, "attempt", "attempts") + ")"
	}
	return shownAs{cause, err}
}

// apiCause is err shown as what the store said ("AccessDenied: Access
// Denied", with its request id), without the SDK's restatement of the
// operation and status; err stays in the chain.
func apiCause(err error) error {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	msg := apiErr.ErrorCode()
	if m := apiErr.ErrorMessage(); m != "" {
		msg += ": " + m
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) && resp.ServiceRequestID() != "" {
		msg += " (request id " + resp.ServiceRequestID() + ")"
	}
	// What the store says may quote a key, so a file name.
	return shownAs{words.Printable(msg), err}
}

// localFile is err, a local file's failure, as ErrLocalFile too; its
// message unchanged.
type localFile struct{ err error }

func (l localFile) Error() string   { return l.err.Error() }
func (l localFile) Unwrap() []error { return []error{l.err, ErrLocalFile} }

// shownAs is err with another message.
type shownAs struct {
	msg string
	err error
}

func (s shownAs) Error() string { return s.msg }
func (s shownAs) Unwrap() error { return s.err }

func endpointHint(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		if u, perr := url.Parse(urlErr.URL); perr == nil {
			return "no answer from " + u.Scheme + "://" + u.Host
		}
	}
	return "check the endpoint and the network"
}

// isCertificateError reports whether err is a TLS certificate that did not
// verify.
func isCertificateError(err error) bool {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &host) || errors.As(err, &verify)
}
