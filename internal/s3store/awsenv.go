package s3store

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// awsEnv is the SDK's documented environment variables read through the
// program's lookup rather than the process environment, so that a caller
// (a test) can give each run its own. The SDK still reads the process
// environment for what is not here (container credentials, IMDS, ...); with
// Options.Lookup nil, or os.LookupEnv, the two agree.
type awsEnv func(string) (string, bool)

// get returns the first of keys that is set and not empty.
func (e awsEnv) get(keys ...string) string {
	for _, k := range keys {
		if v, ok := e(k); ok && v != "" {
			return v
		}
	}
	return ""
}

// profile is AWS_PROFILE (or AWS_DEFAULT_PROFILE), which the SDK lets win
// over keys in the environment.
func (e awsEnv) profile() string { return e.get("AWS_PROFILE", "AWS_DEFAULT_PROFILE") }

// profileVar names the variable profile came from, for messages.
func (e awsEnv) profileVar() string {
	if e.get("AWS_PROFILE") != "" {
		return "AWS_PROFILE"
	}
	return "AWS_DEFAULT_PROFILE"
}

// keys reports whether static keys are set (and no profile).
func (e awsEnv) keys() (access, secret string, ok bool) {
	access, secret = e.get("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"), e.get("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY")
	return access, secret, access != "" && secret != "" && e.profile() == ""
}

// webIdentity is AWS_WEB_IDENTITY_TOKEN_FILE when the SDK would use it:
// no profile and no keys.
func (e awsEnv) webIdentity() string {
	if _, _, ok := e.keys(); ok || e.profile() != "" {
		return ""
	}
	return e.get("AWS_WEB_IDENTITY_TOKEN_FILE")
}

// loadOptions gives the SDK, as explicit options (which win over its own
// reading of the process environment), what the variables say.
func (e awsEnv) loadOptions() ([]func(*config.LoadOptions) error, error) {
	var opts []func(*config.LoadOptions) error
	if v := e.get("AWS_REGION", "AWS_DEFAULT_REGION"); v != "" {
		opts = append(opts, config.WithRegion(v))
	}
	if v := e.get("AWS_CONFIG_FILE"); v != "" {
		opts = append(opts, config.WithSharedConfigFiles([]string{v}))
	}
	if v := e.get("AWS_SHARED_CREDENTIALS_FILE"); v != "" {
		opts = append(opts, config.WithSharedCredentialsFiles([]string{v}))
	}
	if v := e.profile(); v != "" {
		opts = append(opts, config.WithSharedConfigProfile(v))
	}
	if access, secret, ok := e.keys(); ok {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(access, secret, e.get("AWS_SESSION_TOKEN"))))
	}
	if v := e.get("AWS_ENDPOINT_URL"); v != "" {
		opts = append(opts, config.WithBaseEndpoint(v))
	}
	if v := e.get("AWS_MAX_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("AWS_MAX_ATTEMPTS=%q: not a whole number of attempts", v)
		}
		if n > 0 { // 0 leaves the default, as the SDK does
			opts = append(opts, config.WithRetryMaxAttempts(n))
		}
	}
	if v := e.get("AWS_EC2_METADATA_DISABLED"); v != "" {
		// Said either way, so the process environment's does not count.
		state := imds.ClientEnabled
		if strings.EqualFold(v, "true") {
			state = imds.ClientDisabled
		}
		opts = append(opts, config.WithEC2IMDSClientEnableState(state))
	}
	if v := e.get("AWS_EC2_METADATA_SERVICE_ENDPOINT"); v != "" {
		opts = append(opts, config.WithEC2IMDSEndpoint(v))
	}
	if v := e.get("AWS_CA_BUNDLE"); v != "" {
		pem, err := os.ReadFile(v)
		if err != nil {
			return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
		}
		opts = append(opts, config.WithCustomCABundle(bytes.NewReader(pem)))
	}
	return opts, nil
}

// endpoint is the service's own endpoint variable (AWS_ENDPOINT_URL_S3,
// AWS_ENDPOINT_URL_STS), nil when unset.
func (e awsEnv) endpoint(service string) *string {
	if v := e.get("AWS_ENDPOINT_URL_" + service); v != "" {
		return aws.String(v)
	}
	return nil
}
