//go:build unix

package codehash

import (
	"syscall"
	"time"
)

// cpuTime is the process's user and system CPU time: on a shared machine
// the CPU a benchmark uses is steadier than the wall time it takes.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
