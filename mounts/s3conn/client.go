// Package s3conn builds S3 clients from a mounts.Spec with the SDK's own
// credential providers, and checks that a connector's bucket is usable.
package s3conn

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/s3mounts/s3mounts/mounts"
)

// Options tune the HTTP side of a client.
type Options struct {
	// StallTimeout bounds how long a connection may wait for response
	// headers (and dial). 0 means the spec's stall_timeout.
	StallTimeout time.Duration
	// MaxConnsPerHost caps parallel connections (0: 64).
	MaxConnsPerHost int
	// RetryMaxAttempts (0: 3).
	RetryMaxAttempts int
}

// NewConfig returns an aws.Config for spec: region, credentials (static,
// session token, shared profile, AssumeRole with external id and source
// identity, web identity token file, anonymous) and an HTTP client that
// works with AWS_CA_BUNDLE set (a BuildableClient, which the SDK can add
// the bundle to).
func NewConfig(ctx context.Context, spec mounts.Spec, o Options) (aws.Config, error) {
	stall := o.StallTimeout
	if stall <= 0 {
		stall = spec.StallTimeout
	}
	maxConns := o.MaxConnsPerHost
	if maxConns <= 0 {
		maxConns = 64
	}
	attempts := o.RetryMaxAttempts
	if attempts <= 0 {
		attempts = 3
	}
	httpClient := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = stall; d.KeepAlive = 30 * time.Second }).
		WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = maxConns * 2
			t.MaxIdleConnsPerHost = maxConns
			t.MaxConnsPerHost = maxConns
			t.ResponseHeaderTimeout = stall
			t.IdleConnTimeout = 90 * time.Second
			t.TLSHandshakeTimeout = stall
		})
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(spec.Region),
		config.WithHTTPClient(httpClient),
		config.WithRetryMaxAttempts(attempts),
	}
	c := spec.Credentials
	switch {
	case c.Anonymous:
		opts = append(opts, config.WithCredentialsProvider(aws.AnonymousCredentials{}))
	case c.AccessKeyID != "" || c.SecretAccessKey != "":
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			c.AccessKeyID, c.SecretAccessKey.Reveal(), c.SessionToken.Reveal())))
	case c.Profile != "":
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.WebIdentityTokenFile != "" && c.RoleARN != "" {
		opts = append(opts, config.WithWebIdentityRoleCredentialOptions(func(o *stscreds.WebIdentityRoleOptions) {
			if c.RoleSessionName != "" {
				o.RoleSessionName = c.RoleSessionName
			}
		}))
	}
	// The profile-free default chain would read the daemon's own environment;
	// a connector without credentials of its own must not borrow them.
	if !c.Anonymous && c.AccessKeyID == "" && c.Profile == "" && c.WebIdentityTokenFile == "" {
		return aws.Config{}, fmt.Errorf("connector %s has no credentials: set access_key_id with a secret, profile, web_identity_token_file, or anonymous = true", spec.ID)
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS config for connector %s: %w", spec.ID, err)
	}
	if c.WebIdentityTokenFile != "" && c.RoleARN != "" {
		stsClient := sts.NewFromConfig(cfg)
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(stsClient, c.RoleARN,
			stscreds.IdentityTokenFile(c.WebIdentityTokenFile), func(o *stscreds.WebIdentityRoleOptions) {
				o.RoleSessionName = orDefault(c.RoleSessionName, "s3mounts")
			}))
	} else if c.RoleARN != "" {
		stsClient := sts.NewFromConfig(cfg)
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, c.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = orDefault(c.RoleSessionName, "s3mounts")
			if c.ExternalID != "" {
				o.ExternalID = aws.String(c.ExternalID)
			}
			if c.SourceIdentity != "" {
				o.SourceIdentity = aws.String(c.SourceIdentity)
			}
		}))
	}
	return cfg, nil
}

// NewClient returns an S3 client for spec (endpoint, addressing style,
// credentials).
func NewClient(ctx context.Context, spec mounts.Spec, o Options) (*s3.Client, error) {
	cfg, err := NewConfig(ctx, spec, o)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(so *s3.Options) {
		if spec.Endpoint != "" {
			so.BaseEndpoint = aws.String(spec.Endpoint)
		}
		so.UsePathStyle = spec.PathStyle
		// Checksums on every request cost CPU and break some S3-compatible
		// stores; compute them only where the API requires them.
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
