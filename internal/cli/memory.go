package cli

import (
	"os"
	"runtime"
	"runtime/debug"
)

// The garbage collector's settings, for each command. GOGC and GOMEMLIMIT
// still decide where they are set (each overrides what it names).
const (
	// gcPercent: the code hash allocates a lot of short-lived index entries
	// and file infos, and a higher target than Go's 100 cut its CPU by a
	// tenth; memoryLimit, a soft limit, keeps the heap of very large
	// repositories in check.
	gcPercent   = 400
	memoryLimit = 512 << 20
	// pruneMemoryLimit: prune's listings and record reads make garbage in
	// bursts (a page of 1,000 keys decoded from XML at a time, on several
	// listings): without a limit the heap grows to twice what is live
	// before the collector runs, and a bucket of 200,000 objects took
	// 350 MiB.
	pruneMemoryLimit = 160 << 20
	// hashHeapFloor: check and hash collect nothing until the runtime
	// holds this much (the soft limit counts its heap, stacks and
	// metadata), then go on as the other commands. A hash of 200,000 files
	// peaks at 134 MiB resident either way, and without its two
	// collections takes 6% less CPU and wall time (docs/benchmarks-history.md,
	// "No collection below 192 MiB"). Not for every command: an upload of
	// 10,000 files grew to 490 MiB without a collection, against 95.
	hashHeapFloor = 192 << 20
)

// memorySettings are what setMemory sets.
type memorySettings struct {
	percent    int   // GOGC: -1 is off
	limit      int64 // the soft limit, in bytes
	setPercent bool  // false where GOGC is set
	setLimit   bool  // false where GOMEMLIMIT is set
	// late: percent and limit (off, hashHeapFloor) hold until the first
	// collection, then gcPercent and memoryLimit.
	late bool
}

// memoryFor is the settings of cmd, given which of GOGC and GOMEMLIMIT are
// set in the environment (empty is unset, as the runtime reads them).
func memoryFor(cmd string, lookup func(string) (string, bool)) memorySettings {
	set := func(name string) bool { v, ok := lookup(name); return ok && v != "" }
	gogc, gomemlimit := set("GOGC"), set("GOMEMLIMIT")
	s := memorySettings{percent: gcPercent, limit: memoryLimit, setPercent: !gogc, setLimit: !gomemlimit}
	switch cmd {
	case "prune":
		s.limit = pruneMemoryLimit
	case "check", "hash":
		// Only where both are Go's: a floor under a limit or a target of
		// the user's own would override them.
		if !gogc && !gomemlimit {
			s.percent, s.limit, s.late = -1, hashHeapFloor, true
		}
	}
	return s
}

// setsMemory: Run applies its command's settings, for the whole process
// and for good. The tests turn it off (TestMain): they run many commands
// at once in one process, where one's settings would outlive it in
// another's.
var setsMemory = true

// setMemory applies the settings of cmd.
func setMemory(cmd string) (switched <-chan struct{}) {
	s := memoryFor(cmd, os.LookupEnv)
	if s.setPercent {
		debug.SetGCPercent(s.percent)
	}
	if s.setLimit {
		debug.SetMemoryLimit(s.limit)
	}
	if !s.late {
		return nil
	}
	// Closed once the usual settings are in place (for a test to wait on).
	done := make(chan struct{})
	afterCollection(func() {
		debug.SetGCPercent(gcPercent)
		debug.SetMemoryLimit(memoryLimit)
		close(done)
	})
	return done
}

// afterCollection runs f once the next collection has run: the collector
// finds an object nothing refers to, and runs its cleanup. No timer and no
// polling: with the collector off, the first collection is the one the
// soft limit starts.
func afterCollection(f func()) {
	// Larger than 16 bytes: smaller objects without pointers may share a
	// block with others, and be found unreferenced only with them.
	sentinel := new([64]byte)
	runtime.AddCleanup(sentinel, func(f func()) { f() }, f)
}
