package s3store

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"
)

// CopyRequest is one server-side copy inside the bucket.
type CopyRequest struct {
	Src, Dst string
	Size     int64
	// SrcETag, when known, makes the copy conditional: a source replaced
	// since its completion record was written is not copied.
	SrcETag string
	// Metadata and ContentType replace the source's when Metadata is non-nil;
	// with nil the source's metadata is kept.
	Metadata    map[string]string
	ContentType string
}

// Copy copies an object inside the bucket without downloading it: one
// CopyObject up to the copy threshold, a multipart copy beyond. It returns
// the new ETag.
func (s *Store) Copy(ctx context.Context, r CopyRequest) (string, error) {
	if r.Size > s.copyLimit() {
		return s.copyMultipart(ctx, r)
	}
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	in := &s3.CopyObjectInput{
		Bucket:     &s.bucket,
		Key:        &r.Dst,
		CopySource: aws.String(copySource(s.bucket, r.Src)),
	}
	if r.SrcETag != "" {
		in.CopySourceIfMatch = aws.String(r.SrcETag)
	}
	if r.Metadata != nil {
		// REPLACE drops the source's metadata and Content-Type: both are set again.
		in.MetadataDirective = types.MetadataDirectiveReplace
		in.Metadata = r.Metadata
		in.ContentType = aws.String(r.ContentType)
	}
	out, err := s.client.CopyObject(ctx, in)
	if err != nil {
		return "", s.classify("copy "+s.URL(r.Src)+" to", r.Dst, err)
	}
	if out.CopyObjectResult == nil {
		return "", nil
	}
	return aws.ToString(out.CopyObjectResult.ETag), nil
}

func (s *Store) copyLimit() int64 {
	if s.copyPartThreshold > 0 {
		return s.copyPartThreshold
	}
	return DefaultCopyPartThreshold
}

// copyMultipart copies in parts of at least the part size (UploadPartCopy
// takes 5 MiB to 5 GiB a part), in parallel.
func (s *Store) copyMultipart(ctx context.Context, r CopyRequest) (etag string, err error) {
	meta, ct := r.Metadata, r.ContentType
	if meta == nil {
		// A multipart upload cannot copy metadata: read it from the source.
		info, err := s.Head(ctx, r.Src)
		if err != nil {
			return "", err
		}
		meta, ct = info.Metadata, info.ContentType
	}
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: &r.Dst, Metadata: meta, ContentType: aws.String(ct),
	})
	if err != nil {
		return "", s.classify("start multipart copy to", r.Dst, err)
	}
	defer func() {
		if err != nil {
			s.abort(r.Dst, created.UploadId)
		}
	}()
	partSize := max(s.partSizeFor(r.Size), 5<<20)
	n := int((r.Size + partSize - 1) / partSize)
	parts := make([]types.CompletedPart, n)
	g, gctx := errgroup.WithContext(ctx)
	for i := range n {
		g.Go(func() error {
			if err := s.acquire(gctx); err != nil {
				return err
			}
			defer s.release()
			first := int64(i) * partSize
			last := min(first+partSize, r.Size) - 1
			num := int32(i + 1)
			in := &s3.UploadPartCopyInput{
				Bucket: &s.bucket, Key: &r.Dst, UploadId: created.UploadId, PartNumber: &num,
				CopySource:      aws.String(copySource(s.bucket, r.Src)),
				CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", first, last)),
			}
			if r.SrcETag != "" {
				in.CopySourceIfMatch = aws.String(r.SrcETag)
			}
			out, err := s.client.UploadPartCopy(gctx, in)
			if err != nil {
				return s.classify(fmt.Sprintf("copy part %d of %s to", num, s.URL(r.Src)), r.Dst, err)
			}
			parts[i] = types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: &num}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	out, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: &r.Dst, UploadId: created.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return "", s.classify("complete multipart copy to", r.Dst, err)
	}
	if err := s.verifySize(ctx, r.Dst, r.Size); err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// copySource is the x-amz-copy-source value: bucket/key, URL-encoded per
// segment. '+' is encoded too: some stores decode it as a space.
func copySource(bucket, key string) string {
	segs := strings.Split(bucket+"/"+key, "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(url.PathEscape(s), "+", "%2B")
	}
	return strings.Join(segs, "/")
}
