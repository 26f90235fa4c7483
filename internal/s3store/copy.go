package s3store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/nsmithuk/s3-asset-manager/internal/words"
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
		return "", s.copyFailed(ctx, r, "copy "+s.shown(r.Src)+" to", err)
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
func (s *Store) copyMultipart(ctx context.Context, r CopyRequest) (string, error) {
	meta, ct := r.Metadata, r.ContentType
	if meta == nil {
		// A multipart upload cannot copy metadata: read it from the source.
		info, err := s.Head(ctx, r.Src)
		if err != nil {
			return "", err
		}
		meta, ct = info.Metadata, info.ContentType
	}
	partSize := max(s.partSizeFor(r.Size), 5<<20)
	return s.multipart(ctx, "copy", r.Dst, r.Size, partSize, meta, ct, false, false,
		func(ctx context.Context, uploadID *string, num int32, off, n int64) (types.CompletedPart, error) {
			in := &s3.UploadPartCopyInput{
				Bucket: &s.bucket, Key: &r.Dst, UploadId: uploadID, PartNumber: &num,
				CopySource:      aws.String(copySource(s.bucket, r.Src)),
				CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1)),
			}
			if r.SrcETag != "" {
				in.CopySourceIfMatch = aws.String(r.SrcETag)
			}
			out, err := s.client.UploadPartCopy(ctx, in)
			if err != nil {
				return types.CompletedPart{}, s.copyFailed(ctx, r, fmt.Sprintf("copy part %d of %s to", num, s.shown(r.Src)), err)
			}
			return types.CompletedPart{ETag: out.CopyPartResult.ETag}, nil
		})
}

// copyFailed classifies a failed copy. A conditional copy's source that was
// replaced or deleted is ErrSourceChanged however the store says it: S3 and
// MinIO answer 412, but versitygw checks a part's range against a smaller new
// source first (400 InvalidArgument), and a deleted one is a 404. So on any
// other failure, the source's current ETag decides.
func (s *Store) copyFailed(ctx context.Context, r CopyRequest, op string, err error) error {
	err = s.classify(op, r.Dst, err)
	if errors.Is(err, ErrExists) {
		// The copy's only precondition is on its source.
		return fmt.Errorf("%s %s: %w", op, s.shown(r.Dst), ErrSourceChanged)
	}
	if r.SrcETag == "" || ctx.Err() != nil {
		return err
	}
	info, herr := s.Head(ctx, r.Src)
	switch {
	case errors.Is(herr, ErrNotFound):
		return fmt.Errorf("%s %s: %w (it is gone)", op, s.shown(r.Dst), ErrSourceChanged)
	case herr == nil && info.ETag != r.SrcETag:
		return fmt.Errorf("%s %s: %w (its ETag is now %s, not %s)", op, s.shown(r.Dst), ErrSourceChanged, words.Printable(info.ETag), words.Printable(r.SrcETag))
	}
	return err
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
