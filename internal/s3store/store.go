// Package s3store wraps aws-sdk-go-v2 for what the tool does in S3: read a
// small object, list a prefix, upload a file (multipart when large), copy an
// object inside S3, and write a completion record.
//
// It works unchanged against AWS S3 and S3-compatible stores: request
// checksums are only sent where an operation requires them (many stores refuse
// the SDK's default CRC32 headers and aws-chunked bodies). A single-request
// body is signed with its SHA-256 instead, which SigV4 stores check against
// the bytes received; multipart parts carry CRC32C where the store confirms
// it checks it, else they are signed the same way. Content-MD5 can be added
// for stores that check neither.
package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/jonboulle/clockwork"
	"golang.org/x/sync/semaphore"

	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// Options configure a Store.
type Options struct {
	Bucket string
	// Endpoint overrides the S3 endpoint; empty leaves AWS_ENDPOINT_URL_S3,
	// AWS_ENDPOINT_URL and the AWS default to the SDK.
	Endpoint string
	// Lookup reads the AWS_* variables (keys, region, profile, endpoints,
	// CA bundle, max attempts, web identity); nil means os.LookupEnv. The
	// program passes the lookup it reads its settings with, so that each run
	// (each test) can have its own.
	Lookup    func(string) (string, bool)
	PathStyle bool
	// Role, when set, is assumed with session name "s3-asset-manager".
	Role string
	// WebIdentityRole and IDToken: with both set (GitHub Actions with
	// id-token: write, AWS_ROLE_ARN but no token file), the role is assumed
	// with the job's OIDC token before anything else.
	WebIdentityRole string
	IDToken         func(context.Context) (string, error)
	// Concurrency bounds the requests in flight; a store that throttles
	// lowers the bound for a while (see limiter).
	Concurrency int
	// PartSize is the multipart part size; 0 means DefaultPartSize.
	PartSize int64
	// MaxBytesInFlight bounds the bytes of the bodies streamed from disk at
	// once (parts, and single uploads of files too big to be read into
	// memory), apart from the bound on requests; 0 means 16 parts. With many
	// requests in flight, a large file's parts would otherwise take every
	// slot, each sharing the link with all the others (on a slow link, for
	// longer than a request's timeout), and small files would wait behind them.
	MaxBytesInFlight int64
	// DownloadMemory bounds the memory a download's parts are received into
	// (shared by every file fetched at once); 0 means DefaultDownloadMemory.
	// A file is received in pieces of min(PartSize, DownloadMemory/dlBuffers), as
	// many at once as fit, fetched by ranged requests of floor(PartSize /
	// piece) pieces in a row (each going on into its next piece once that
	// has a buffer; of one piece where connections are slow); one up to
	// twice the piece size in one request, streamed.
	DownloadMemory int64
	// StallTimeout: a response body that brings no byte for this long is
	// given up and the rest asked for again; 0 means DefaultStallTimeout.
	StallTimeout time.Duration
	// Clock is what stalls, download backoffs and request timeouts are timed
	// by; nil means the real one. Tests use a fake.
	Clock clockwork.Clock
	// CopyPartThreshold is the size above which copies go in parts; 0 means
	// DefaultCopyPartThreshold. Tests lower it.
	CopyPartThreshold int64
	// RequestTimeout bounds each attempt of each request; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxAttempts of each request; 0 means 10 (AWS_MAX_ATTEMPTS overrides). Tests lower it.
	MaxAttempts int
	// ContentMD5 adds Content-MD5 to every upload, for stores that check
	// neither the signed SHA-256 nor CRC32C, and for buckets with Object Lock
	// retention.
	ContentMD5 bool
}

const (
	// DefaultPartSize of multipart uploads and copies; a file larger than
	// twice this is sent in parts.
	DefaultPartSize = 16 << 20
	// maxParts is S3's limit of parts in one multipart upload.
	maxParts = 10000
	// DefaultCopyPartThreshold: larger objects are copied in parts. S3 allows
	// one CopyObject up to 5 GiB, but a single request that long outlives any
	// sensible per-request timeout; parts copy in parallel, too.
	DefaultCopyPartThreshold = 512 << 20
	// DefaultRequestTimeout bounds one attempt of one request: a part is at
	// most a few tens of MiB, so two minutes means a stall, not a slow link.
	DefaultRequestTimeout = 2 * time.Minute
	// DefaultDownloadMemory: twelve pieces of 2 MiB at once (a 1 GiB download
	// peaks at about 41 MiB resident, under its target of 64 MiB).
	DefaultDownloadMemory = 24 << 20
	// dlBuffers is how many pieces a download's memory is shared among, so
	// how many requests can run at once where each must be of one piece (slow
	// connections): twelve of 2 MiB took three files of 256 MiB through the
	// benchmark's distant store at 25 MiB/s a connection in 3.6-3.9 s, as
	// s5cmd, against 5.6 s with six of 4 MiB; on loopback the same
	// (docs/benchmarks-history.md, "Twelve pieces of 2 MiB").
	dlBuffers = 12
	// DefaultStallTimeout: a body silent this long is stuck, not slow (a
	// working connection, however slow, brings some bytes every second).
	DefaultStallTimeout = 10 * time.Second
	// defaultMaxAttempts rides out a store that fails one request in four.
	defaultMaxAttempts = 10
)

// Store is a bucket, reached through one S3 client.
type Store struct {
	client   *s3.Client
	bucket   string
	region   string // requests are signed for it
	partSize int64
	// copyPartThreshold: see Options.CopyPartThreshold.
	copyPartThreshold int64
	contentMD5        bool
	crc               atomic.Int32        // crcUnknown, crcOn or crcOff: do parts carry CRC32C?
	limit             *limiter            // bounds requests in flight across files and parts
	bytes             *semaphore.Weighted // bounds the bytes of large bodies in flight (see sending)
	maxBytes          int64
	dlPart            int64        // the size of the pieces downloads are received in
	dlPerRequest      int          // how many of those pieces one ranged GET fetches
	dlSlowPart        float64      // slowPart; tests change it
	dlRanged          atomic.Int32 // ranged GETs of large files under way (see rateTally.note)
	dlBufs            chan []byte  // the pool of part buffers (nil entries: not allocated yet)
	stallTimeout      time.Duration
	clock             clockwork.Clock
	// singleDeletes: the store has no DeleteObjects (it answered
	// NotImplemented); keys are deleted one request each.
	singleDeletes atomic.Bool
}

// New builds the S3 client from the standard AWS configuration chain (keys,
// session token, profile, web identity, region, endpoint, CA bundle, max
// attempts) plus the options. It sends no request: every error it returns is
// ErrConfig, a setting's problem.
func New(ctx context.Context, o Options) (*Store, error) {
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.MaxBytesInFlight == 0 {
		o.MaxBytesInFlight = 16 * o.PartSize
	}
	if o.DownloadMemory == 0 {
		o.DownloadMemory = DefaultDownloadMemory
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = defaultMaxAttempts
	}
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 2 * o.Concurrency
		t.MaxIdleConnsPerHost = 2 * o.Concurrency
		t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.TLSHandshakeTimeout = 10 * time.Second
	})
	env := awsEnv(o.Lookup)
	if env == nil {
		env = os.LookupEnv
	}
	fromEnv, err := env.loadOptions()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cfg, err := config.LoadDefaultConfig(ctx, append(fromEnv,
		config.WithHTTPClient(httpClient),
		// Only where an operation requires it: stores such as Ceph RGW,
		// Cloudflare R2 and older MinIO refuse the default CRC32 trailers.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithCredentialsCacheOptions(refreshEarly),
	)...)
	if err != nil {
		// Nothing is asked of the network here (credentials are fetched on
		// the first request): what fails is the variables or the files.
		var noProfile config.SharedConfigProfileNotExistError
		if errors.As(err, &noProfile) {
			err = fmt.Errorf("%s=%q: no such profile in the AWS config or credentials file: %w", env.profileVar(), env.profile(), err)
		}
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	s3Endpoint := env.endpoint("S3")
	if o.Endpoint != "" {
		s3Endpoint = aws.String(o.Endpoint)
	}
	newSTS := func() *sts.Client {
		return sts.NewFromConfig(cfg, func(so *sts.Options) {
			if e := env.endpoint("STS"); e != nil {
				so.BaseEndpoint = e
			}
		})
	}
	if cfg.Region == "" {
		if s3Endpoint == nil && !hasEnvEndpoint(cfg) {
			return nil, fmt.Errorf("%w: no AWS region: set AWS_REGION or AWS_DEFAULT_REGION", ErrConfig)
		}
		// S3-compatible stores mostly ignore the region but SigV4 needs one.
		cfg.Region = "us-east-1"
	}
	if file := env.webIdentity(); file != "" {
		arn := env.get("AWS_ROLE_ARN")
		if arn == "" {
			return nil, fmt.Errorf("%w: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not", ErrConfig)
		}
		provider := stscreds.NewWebIdentityRoleProvider(newSTS(), arn, stscreds.IdentityTokenFile(file),
			func(wo *stscreds.WebIdentityRoleOptions) { wo.RoleSessionName = env.get("AWS_ROLE_SESSION_NAME") })
		cfg.Credentials = aws.NewCredentialsCache(provider, refreshEarly)
	}
	if o.WebIdentityRole != "" && o.IDToken != nil {
		provider := stscreds.NewWebIdentityRoleProvider(newSTS(), o.WebIdentityRole,
			idTokenRetriever{ctx: ctx, get: o.IDToken}, func(wo *stscreds.WebIdentityRoleOptions) {
				wo.RoleSessionName = "s3-asset-manager"
			})
		cfg.Credentials = aws.NewCredentialsCache(provider, refreshEarly)
	}
	if o.Role != "" {
		provider := stscreds.NewAssumeRoleProvider(newSTS(), o.Role, func(ao *stscreds.AssumeRoleOptions) {
			ao.RoleSessionName = "s3-asset-manager"
		})
		// The cache refreshes the role's credentials before they expire.
		cfg.Credentials = aws.NewCredentialsCache(provider, refreshEarly)
	}
	limit := newLimiter(o.Concurrency)
	// In this order: each attempt waits for a slot (withLimiter), then its
	// timeout starts (attemptTimeout); both sit right after the retryer.
	client := s3.NewFromConfig(cfg, attemptTimeout(o.RequestTimeout, o.Clock), withLimiter(limit), func(so *s3.Options) {
		if s3Endpoint != nil {
			so.BaseEndpoint = s3Endpoint
		}
		so.UsePathStyle = o.PathStyle
		// Set here, not with config.WithRetryer, so that AWS_MAX_ATTEMPTS
		// (applied by the client after these options) still overrides it.
		so.Retryer = retry.NewStandard(func(ro *retry.StandardOptions) {
			// The client-side retry quota gives up under concurrency
			// ("retry quota exceeded"): a CI job would rather wait.
			ro.RateLimiter = ratelimit.None
			ro.MaxAttempts = o.MaxAttempts
			ro.MaxBackoff = 10 * time.Second
			// A certificate that did not verify will not verify on the next
			// attempt either: the SDK would retry it as a connection error.
			ro.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				if isCertificateError(err) {
					return aws.FalseTernary
				}
				return aws.UnknownTernary
			})}, slices.Clone(retry.DefaultRetryables)...)
			// A body the store found damaged on the way is sent again. A file
			// that changed while it was read is caught after (ErrChanged).
			// AWS answers a conditional write racing another on the same key
			// with 409 ConditionalRequestConflict, and documents it as to be
			// retried: the next attempt meets the winner's object (412).
			ro.Retryables = append(ro.Retryables, retry.RetryableErrorCode{Codes: digestMismatch},
				retry.RetryableErrorCode{Codes: map[string]struct{}{"ConditionalRequestConflict": {}}},
				// An answer whose body ended early (its connection closed
				// mid-body) is asked for again, as a reset connection is: the
				// SDK sees it only as it decodes the body, and would not retry.
				retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
					var de *smithy.DeserializationError
					if errors.As(err, &de) && errors.Is(err, io.ErrUnexpectedEOF) {
						return aws.TrueTernary
					}
					return aws.UnknownTernary
				}))
			// A throttled request waits as briefly as any other before it
			// is retried (50 ms, doubling), not the SDK's 1 s, doubling, for
			// throttles: the limiter already holds the retry until the store
			// has room, and would otherwise sit idle.
			ro.Throttles = nil
		})
	})
	dlPart := max(64<<10, min(o.PartSize, o.DownloadMemory/dlBuffers))
	dlBufs := make(chan []byte, max(1, o.DownloadMemory/dlPart))
	// Requests of PartSize, not of a piece, unless the connections are slow
	// (see download.nextRun): MinIO spends about 1.5 ms of CPU on each GET,
	// which on one machine is taken from the client (a 1 GiB download in
	// 4 MiB requests cost it 0.35 s more than in 16 MiB ones).
	dlPerRequest := int(max(1, o.PartSize/dlPart))
	for range cap(dlBufs) {
		dlBufs <- nil // allocated when first taken
	}
	return &Store{
		region:            cfg.Region,
		dlPart:            dlPart,
		dlPerRequest:      dlPerRequest,
		dlSlowPart:        slowPart,
		dlBufs:            dlBufs,
		stallTimeout:      o.StallTimeout,
		clock:             o.Clock,
		client:            client,
		bucket:            o.Bucket,
		partSize:          o.PartSize,
		copyPartThreshold: o.CopyPartThreshold,
		contentMD5:        o.ContentMD5,
		limit:             limit,
		bytes:             semaphore.NewWeighted(o.MaxBytesInFlight),
		maxBytes:          o.MaxBytesInFlight,
	}, nil
}

// digestMismatch are the codes of a body that does not match its digest.
var digestMismatch = map[string]struct{}{"BadDigest": {}, "XAmzContentSHA256Mismatch": {}, "XAmzContentChecksumMismatch": {}}

// refreshEarly replaces credentials that expire (a role's, a web identity's)
// 5 minutes before they do. The SDK's default is at the instant: a request
// signed in their last moments (with many in flight, one often is) reaches
// S3 expired (ExpiredToken), and an upload or download that outlives a
// session (AWS_ROLE's last 15 minutes) fails. 5 minutes also covers a
// client clock that far behind STS's.
func refreshEarly(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = 5 * time.Minute }

// Whether the store checks CRC32C part checksums: unknown until the first
// multipart upload shows it (crcOn) or not (crcOff, for the rest of the run).
const (
	crcUnknown int32 = iota
	crcOn
	crcOff
)

func hasEnvEndpoint(cfg aws.Config) bool {
	return cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != ""
}

// URL names a key for logs.
func (s *Store) URL(key string) string { return "s3://" + s.bucket + "/" + key }

// shown is URL(key) for a message: the key holds a file name, from the
// package directory or a record (words.Printable).
func (s *Store) shown(key string) string { return words.Printable(s.URL(key)) }

// idTokenRetriever adapts a token source to stscreds, which asks again
// whenever the credentials are refreshed.
type idTokenRetriever struct {
	ctx context.Context
	get func(context.Context) (string, error)
}

func (r idTokenRetriever) GetIdentityToken() ([]byte, error) {
	t, err := r.get(r.ctx)
	if err != nil {
		return nil, fmt.Errorf("GitHub Actions OIDC token: %w", err)
	}
	return []byte(t), nil
}
