package s3store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// ReadSmall returns the bytes of a small object (at most max bytes), or an
// error wrapping ErrNotFound when the key does not exist, ErrTooLarge when
// the object is larger. It uses GET, not
// HEAD: a HEAD's 404 cannot tell a missing key from a missing bucket.
//
// A body cut short, stalled (no byte for StallTimeout) or out of its
// attempt's time is read again whole, as a download's is resumed
// (readAgain: the same watch, the same budget of attempts). So is one that
// does not match the SHA-256 WriteRecord stored with it (damaged on the
// way), unless the same bytes come twice: those are what is stored, under
// metadata another writer set, and the caller judges them.
func (s *Store) ReadSmall(ctx context.Context, key string, max int64) ([]byte, error) {
	var b, damaged []byte // damaged: the last body that did not match its SHA-256
	err := s.readAgain(ctx, func(ctx context.Context, opt func(*s3.Options)) (int, bool, error) {
		var requests int
		var err error
		b, requests, err = s.getSmall(ctx, key, max, opt)
		if !errors.Is(err, errDamaged) {
			// A body cut short is read again whole: its bytes are not
			// kept, and do not start the budget again.
			return requests, false, err
		}
		if damaged != nil && bytes.Equal(b, damaged) {
			return requests, false, nil
		}
		// A body that does not match is always read again (the first does
		// not count), so what is stored is taken whatever the attempts
		// (AWS_MAX_ATTEMPTS=1).
		if damaged == nil {
			requests--
		}
		damaged = b
		return requests, false, err
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// getSmall is one GET of ReadSmall (opt its options); a failed read of the
// body is a cutError. It returns the requests the SDK made too.
func (s *Store) getSmall(ctx context.Context, key string, max int64, opt func(*s3.Options)) ([]byte, int, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key}, opt)
	if err != nil {
		return nil, 0, s.classify("get", key, err)
	}
	requests := requestsMade(out.ResultMetadata)
	body := newWatchedBody(out.Body, s.clock, s.stallTimeout)
	defer body.Close()
	if out.ContentLength != nil && *out.ContentLength > max {
		return nil, requests, fmt.Errorf("get %s: %w: %d bytes, more than the %d expected", s.shown(key), ErrTooLarge, *out.ContentLength, max)
	}
	b, err := io.ReadAll(io.LimitReader(body, max+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, requests, s.classify("read", key, err)
		}
		return nil, requests, fmt.Errorf("read %s: %w", s.shown(key), body.cut(err))
	}
	if int64(len(b)) > max {
		return nil, requests, fmt.Errorf("get %s: %w: more than the %d bytes expected", s.shown(key), ErrTooLarge, max)
	}
	if want, ok := out.Metadata[MetaPackageHash]; ok && want != smallHash(b) {
		return b, requests, fmt.Errorf("read %s: %w", s.shown(key), errDamaged)
	}
	return b, requests, nil
}

// MetaPackageHash is the user metadata (x-amz-meta-package-hash) holding
// the base64 SHA-256 of an object's bytes: the original tool's, on every
// artifact, and WriteRecord's on a record, for ReadSmall to check the bytes
// it receives against.
const MetaPackageHash = "package-hash"

// errDamaged: a body that does not match the SHA-256 stored with it.
var errDamaged = errors.New("bytes damaged on the way (their SHA-256 is not the one stored with them)")

func smallHash(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// WriteRecord stores a small object. With exclusive, only if the key is free
// (If-None-Match: *), returning an error wrapping ErrExists when another
// writer got there first; a store that does not implement conditional writes
// gets a plain PUT.
func (s *Store) WriteRecord(ctx context.Context, key string, body []byte, exclusive bool) error {
	put := func(conditional bool) error {
		sum := md5.Sum(body)
		in := &s3.PutObjectInput{
			Bucket:        &s.bucket,
			Key:           &key,
			Body:          bytes.NewReader(body),
			ContentLength: aws.Int64(int64(len(body))),
			ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
			ContentType:   aws.String("application/json"),
			Metadata:      map[string]string{MetaPackageHash: smallHash(body)},
		}
		if conditional {
			in.IfNoneMatch = aws.String("*")
		}
		_, err := s.client.PutObject(ctx, in)
		return err
	}
	err := put(exclusive)
	var apiErr smithy.APIError
	if exclusive && errors.As(err, &apiErr) && apiErr.ErrorCode() == "NotImplemented" {
		err = put(false)
	}
	return s.classify("put", key, err)
}

// Info is what a HEAD tells of an object.
type Info struct {
	Size        int64
	Metadata    map[string]string
	ContentType string
	ETag        string
}

// Head returns an object's size, user metadata, content type and ETag.
func (s *Store) Head(ctx context.Context, key string) (Info, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return Info{}, s.classify("head", key, err)
	}
	return Info{
		Size:        aws.ToInt64(out.ContentLength),
		Metadata:    out.Metadata,
		ContentType: aws.ToString(out.ContentType),
		ETag:        aws.ToString(out.ETag),
	}, nil
}

// Object is one object of a listing.
type Object struct {
	Key  string
	Size int64
	// ETag without the quotes S3 puts around it (stores differ in whether
	// their listings keep them), so listed and returned ETags compare equal.
	ETag string
}

// List returns every object under prefix at any depth (one listing without a
// delimiter: a commit's set of components is checked against its
// components' objects, "<prefix><component>/<file>"), over as many pages as
// it takes, in key order.
func (s *Store) List(ctx context.Context, prefix string) ([]Object, error) {
	var objs []Object
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: &s.bucket, Prefix: &prefix,
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.classify("list", prefix, err)
		}
		for _, o := range page.Contents {
			objs = append(objs, Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), ETag: NormalizeETag(aws.ToString(o.ETag))})
		}
	}
	return objs, nil
}

// NormalizeETag strips the quotes around an ETag: S3 quotes them in every
// answer, but some stores' listings do not.
func NormalizeETag(etag string) string {
	return strings.TrimSuffix(strings.TrimPrefix(etag, `"`), `"`)
}
