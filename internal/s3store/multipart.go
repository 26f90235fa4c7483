package s3store

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/nsmithuk/s3-asset-manager/internal/pool"
)

// partFunc sends part num (bytes off to off+n) of an upload, holding a
// request slot (acquire) while the request runs, and returns its ETag and,
// in a CRC32C upload, its checksum.
type partFunc func(ctx context.Context, uploadID *string, num int32, off, n int64) (types.CompletedPart, error)

// multipart runs one multipart upload of size bytes to key: create it with
// the metadata, send the parts in parallel (send takes a request slot for
// each, once what it needs before the request is ready),
// complete it and check the stored size. Any failure aborts it, so no parts
// are left behind, even when ctx was cancelled. With crc the upload is
// created for CRC32C part checksums (which every part then carries); with
// probe, the first part is sent before the others.
func (s *Store) multipart(ctx context.Context, what, key string, size, partSize int64, meta map[string]string, contentType string, crc, probe bool, send partFunc) (etag string, err error) {
	in := &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, Metadata: meta, ContentType: aws.String(contentType),
	}
	if crc {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c
	}
	created, err := s.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return "", s.classify("start multipart "+what+" to", key, err)
	}
	defer func() {
		if err != nil {
			s.abort(ctx, key, created.UploadId)
		}
	}()
	n := partCount(size, partSize)
	parts := make([]types.CompletedPart, n)
	sendPart := func(ctx context.Context, i int) error {
		off, num := int64(i)*partSize, int32(i+1)
		part, err := send(ctx, created.UploadId, num, off, min(partSize, size-off))
		if err != nil {
			return err
		}
		part.PartNumber = &num
		parts[i] = part
		return nil
	}
	first := 0
	if probe {
		// The first part alone: if the store turns out not to check its
		// checksum, no other part is in flight when the upload is aborted
		// (a part landing after the abort can leave the upload behind).
		if err := sendPart(ctx, 0); err != nil {
			return "", err
		}
		first = 1
	}
	// As many parts at once as requests may be in flight (the limiter
	// bounds them across files too).
	err = pool.Run(ctx, s.limit.max, n-first, func(ctx context.Context, i int) error { return sendPart(ctx, first+i) })
	if err != nil {
		return "", err
	}
	out, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, UploadId: created.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		if etag, ok := s.completedAlready(ctx, key, size, parts, err); ok {
			return etag, nil
		}
		return "", s.classify("complete multipart "+what+" to", key, err)
	}
	if err := s.verifySize(ctx, key, size); err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// completedAlready: a completion answered NoSuchUpload because an earlier
// attempt of it completed the upload and its answer was lost on the way
// (MinIO answers a repeated completion so; AWS and versitygw repeat the
// first answer). The upload is taken as done only when the object stored
// is the one these parts make: its size, and the multipart ETag S3 gives
// them (the MD5 of the parts' MD5s, "-" and their count).
func (s *Store) completedAlready(ctx context.Context, key string, size int64, parts []types.CompletedPart, err error) (string, bool) {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NoSuchUpload" {
		return "", false
	}
	want := multipartETag(parts)
	if want == "" {
		return "", false
	}
	info, herr := s.Head(ctx, key)
	if herr != nil || info.Size != size || strings.Trim(info.ETag, `"`) != want {
		return "", false
	}
	return info.ETag, true
}

// multipartETag is the ETag S3 gives the object these parts make, or ""
// when a part's ETag is not an MD5 (32 hex digits) to compute it from.
func multipartETag(parts []types.CompletedPart) string {
	h := md5.New()
	for _, p := range parts {
		sum, err := hex.DecodeString(strings.Trim(aws.ToString(p.ETag), `"`))
		if err != nil || len(sum) != md5.Size {
			return ""
		}
		h.Write(sum)
	}
	return fmt.Sprintf("%x-%d", h.Sum(nil), len(parts))
}
