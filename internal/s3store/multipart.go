package s3store

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"
)

// partFunc sends part num (bytes off to off+n) of an upload and returns its ETag.
type partFunc func(ctx context.Context, uploadID *string, num int32, off, n int64) (etag *string, err error)

// multipart runs one multipart upload of size bytes to key: create it with
// the metadata, send the parts in parallel (each holding a request slot),
// complete it and check the stored size. Any failure aborts it, so no parts
// are left behind, even when ctx was cancelled.
func (s *Store) multipart(ctx context.Context, what, key string, size, partSize int64, meta map[string]string, contentType string, send partFunc) (etag string, err error) {
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, Metadata: meta, ContentType: aws.String(contentType),
	})
	if err != nil {
		return "", s.classify("start multipart "+what+" to", key, err)
	}
	defer func() {
		if err != nil {
			s.abort(key, created.UploadId)
		}
	}()
	n := int((size + partSize - 1) / partSize)
	parts := make([]types.CompletedPart, n)
	g, gctx := errgroup.WithContext(ctx)
	for i := range n {
		g.Go(func() error {
			if err := s.acquire(gctx); err != nil {
				return err
			}
			defer s.release()
			off, num := int64(i)*partSize, int32(i+1)
			etag, err := send(gctx, created.UploadId, num, off, min(partSize, size-off))
			if err != nil {
				return err
			}
			parts[i] = types.CompletedPart{ETag: etag, PartNumber: &num}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	out, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, UploadId: created.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return "", s.classify("complete multipart "+what+" to", key, err)
	}
	if err := s.verifySize(ctx, key, size); err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}
