//go:build !unix

package codehash

import "time"

// cpuTime is not measured where getrusage is missing (Windows): the
// benchmarks' cpu-ms/op reads 0 there.
func cpuTime() time.Duration { return 0 }
