// Command pruneseed fills a bucket for scripts/bench's figure 20: commit sets
// and cache entries as the tool writes them (files, then a completion record
// naming them), recorded long ago, so that prune has a real bucket's worth to
// plan and delete. Only the benchmark uses it.
//
//	pruneseed -bucket B -prefix P [-commits 10000] [-entries 1000] [-files 20] [-workers 256]
//
// Commit i copies cache entry i % entries (its record names the entry as its
// source); the commits were recorded 100 days ago and more, a minute apart.
// The S3 endpoint and credentials come from the environment (AWS_ENDPOINT_URL).
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
)

func main() {
	bucket := flag.String("bucket", "", "bucket")
	prefix := flag.String("prefix", "", "key prefix (ends in /)")
	commits := flag.Int("commits", 10000, "commit sets")
	entries := flag.Int("entries", 1000, "cache entries")
	files := flag.Int("files", 20, "files a set")
	workers := flag.Int("workers", 256, "requests in flight")
	flag.Parse()
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	id := func(s string, n int) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:])[:n] }
	now := time.Now().UTC().Truncate(time.Second)
	var puts atomic.Int64

	put := func(ctx context.Context, key string, body []byte) (string, error) {
		out, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: &key, Body: bytes.NewReader(body)})
		if err != nil {
			return "", fmt.Errorf("put %s: %w", key, err)
		}
		puts.Add(1)
		return aws.ToString(out.ETag), nil
	}
	// set writes a set's files one after another, then its record.
	set := func(ctx context.Context, at string, rec manifest.Record) error {
		for f := range *files {
			name := fmt.Sprintf("fn%02d.zip", f)
			body := []byte(fmt.Sprintf("%s %s %s", at, name, "0123456789abcdef0123456789abcdef"))
			etag, err := put(ctx, at+name, body)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(body)
			rec.Files = append(rec.Files, manifest.File{Name: name, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), ContentType: "application/zip", ETag: etag})
		}
		rec.Format = manifest.Format
		body, err := manifest.Encode(rec, nil)
		if err != nil {
			return err
		}
		_, err = put(ctx, at+manifest.Name, body)
		return err
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(*workers)
	for e := range *entries {
		g.Go(func() error {
			hash := id(fmt.Sprintf("entry %d", e), 64)
			return set(gctx, *prefix+"cache/"+hash+"/", manifest.Record{Kind: manifest.KindCache, CodeHash: hash,
				Commit: id(fmt.Sprintf("commit %d", e), 40), Created: now.Add(-200 * 24 * time.Hour)})
		})
	}
	for c := range *commits {
		g.Go(func() error {
			commit := id(fmt.Sprintf("commit %d", c), 40)
			src := *prefix + "cache/" + id(fmt.Sprintf("entry %d", c%*entries), 64) + "/"
			return set(gctx, *prefix+"artifacts/"+commit+"/", manifest.Record{Kind: manifest.KindArtifacts, Commit: commit,
				CodeHash: id(fmt.Sprintf("entry %d", c%*entries), 64), Source: src,
				Created: now.Add(-100*24*time.Hour - time.Duration(c)*time.Minute)})
		})
		if c%1000 == 999 {
			log.Printf("pruneseed: %d objects written (%s)", puts.Load(), time.Since(start).Round(time.Second))
		}
	}
	if err := g.Wait(); err != nil {
		log.Fatal(err)
	}
	log.Printf("pruneseed: %d objects in %s", puts.Load(), time.Since(start).Round(time.Millisecond))
}
