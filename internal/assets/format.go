package assets

import (
	"github.com/nsmithuk/s3-asset-manager/internal/progress"
	"path/filepath"
	"strings"
	"time"
)

// humanRate formats a transfer speed for logs.
func humanRate(n int64, d time.Duration) string {
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return progress.Size(int64(float64(n)/d.Seconds())) + "/s"
}

// contentTypes covers the usual build outputs. A fixed table, not
// mime.TypeByExtension, which reads /etc/mime.types and so differs by image.
var contentTypes = map[string]string{
	".zip":  "application/zip",
	".jar":  "application/java-archive",
	".war":  "application/java-archive",
	".gz":   "application/gzip",
	".tgz":  "application/gzip",
	".tar":  "application/x-tar",
	".bz2":  "application/x-bzip2",
	".xz":   "application/x-xz",
	".zst":  "application/zstd",
	".7z":   "application/x-7z-compressed",
	".json": "application/json",
	".yaml": "application/yaml",
	".yml":  "application/yaml",
	".txt":  "text/plain; charset=utf-8",
	".md":   "text/markdown; charset=utf-8",
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".wasm": "application/wasm",
	".whl":  "application/zip",
	".deb":  "application/vnd.debian.binary-package",
	".rpm":  "application/x-rpm",
	".xml":  "application/xml",
	".pdf":  "application/pdf",
	".png":  "image/png",
	".svg":  "image/svg+xml",
}

// ContentType picks a Content-Type from the file name.
func ContentType(name string) string {
	ext := strings.ToLower(filepath.Ext(name))
	if t, ok := contentTypes[ext]; ok {
		return t
	}
	return "application/octet-stream"
}

// startProgress reports a transfer's progress to ProgressTo, with log lines
// kept from tearing a bar; rep is nil without ProgressTo. stop ends it.
func (r *Runner) startProgress(what string, total int64, files int) (rep *progress.Reporter, stop func()) {
	if r.ProgressTo == nil {
		return nil, func() {}
	}
	rep = progress.Start(r.ProgressTo, r.Terminal, what, total, files, nil)
	out := r.Log.Writer()
	r.Log.SetOutput(rep.Writer())
	return rep, func() { rep.Stop(); r.Log.SetOutput(out) }
}
