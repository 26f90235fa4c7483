package cli

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestMemoryFor(t *testing.T) {
	t.Parallel()
	late := memorySettings{percent: -1, limit: hashHeapFloor, setPercent: true, setLimit: true, late: true}
	tests := []struct {
		cmd  string
		env  map[string]string // GOGC and GOMEMLIMIT, where set
		want memorySettings
	}{
		{"check", nil, late},
		{"hash", nil, late},
		{"upload", nil, memorySettings{percent: gcPercent, limit: memoryLimit, setPercent: true, setLimit: true}},
		{"download", nil, memorySettings{percent: gcPercent, limit: memoryLimit, setPercent: true, setLimit: true}},
		{"prune", nil, memorySettings{percent: gcPercent, limit: pruneMemoryLimit, setPercent: true, setLimit: true}},
		// The user's setting stands, and check and hash then collect as the others.
		{"check", map[string]string{"GOGC": "50"}, memorySettings{percent: gcPercent, limit: memoryLimit, setLimit: true}},
		{"hash", map[string]string{"GOMEMLIMIT": "1GiB"}, memorySettings{percent: gcPercent, limit: memoryLimit, setPercent: true}},
		{"check", map[string]string{"GOGC": "off"}, memorySettings{percent: gcPercent, limit: memoryLimit, setLimit: true}},
		{"prune", map[string]string{"GOMEMLIMIT": "off"}, memorySettings{percent: gcPercent, limit: pruneMemoryLimit, setPercent: true}},
		{"upload", map[string]string{"GOGC": "50", "GOMEMLIMIT": "1GiB"}, memorySettings{percent: gcPercent, limit: memoryLimit}},
		// Empty is unset, to the runtime and here (a CI file's "GOGC: ${{ inputs.gogc }}").
		{"check", map[string]string{"GOGC": "", "GOMEMLIMIT": ""}, late},
		{"upload", map[string]string{"GOGC": ""}, memorySettings{percent: gcPercent, limit: memoryLimit, setPercent: true, setLimit: true}},
	}
	for _, tt := range tests {
		lookup := func(name string) (string, bool) {
			v, ok := tt.env[name]
			return v, ok
		}
		if got := memoryFor(tt.cmd, lookup); got != tt.want {
			t.Errorf("%s with %v set: %+v, want %+v", tt.cmd, tt.env, got, tt.want)
		}
	}
}

// The switch from no collection to the usual settings happens at the first
// collection, whatever starts it, and not before.
func TestAfterCollection(t *testing.T) {
	t.Parallel()
	before := numGC()
	ran := make(chan uint32)
	afterCollection(func() { ran <- numGC() })
	runtime.GC()
	if at := <-ran; at <= before {
		t.Errorf("ran after %d collections, as many as before it was set up", at)
	}
}

func numGC() uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumGC
}

// memoryChildEnv names the command whose settings TestSetMemory's child
// process applies (TestMain runs memoryChild instead of the tests).
const memoryChildEnv = "S3AM_TEST_SET_MEMORY"

// memoryChild applies cmd's settings to this process, as Run does, and
// prints them, then again after a collection (once they have changed, for
// a command whose settings change then): "GOGC LIMIT GOGC LIMIT".
func memoryChild(cmd string) {
	switched := setMemory(cmd)
	get := func() (int, int64) {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p, debug.SetMemoryLimit(-1)
	}
	p0, l0 := get()
	runtime.GC()
	// The cleanup runs on a goroutine of its own after the collection, at
	// the scheduler's pace (a loaded machine's): wait for it to say so.
	// Were the sentinel not found in that collection, the next ones would.
	for switched != nil {
		select {
		case <-switched:
			switched = nil
		default:
			runtime.GC()
		}
	}
	p1, l1 := get()
	fmt.Println(p0, l0, p1, l1)
}

// setMemory, in a process of its own (it sets the process's settings for
// good): each command's GOGC and soft limit, and the user's where set.
func TestSetMemory(t *testing.T) {
	t.Parallel()
	const noLimit = math.MaxInt64
	tests := []struct {
		cmd  string
		env  []string
		want string
	}{
		{"check", nil, fmt.Sprint(-1, hashHeapFloor, gcPercent, memoryLimit)},
		{"hash", nil, fmt.Sprint(-1, hashHeapFloor, gcPercent, memoryLimit)},
		{"upload", nil, fmt.Sprint(gcPercent, memoryLimit, gcPercent, memoryLimit)},
		{"prune", nil, fmt.Sprint(gcPercent, pruneMemoryLimit, gcPercent, pruneMemoryLimit)},
		{"check", []string{"GOGC=50"}, fmt.Sprint(50, memoryLimit, 50, memoryLimit)},
		{"check", []string{"GOMEMLIMIT=1GiB"}, fmt.Sprint(gcPercent, 1<<30, gcPercent, 1<<30)},
		{"download", []string{"GOGC=off", "GOMEMLIMIT=off"}, fmt.Sprint(-1, noLimit, -1, noLimit)},
	}
	for _, tt := range tests {
		// A guard, not a measure: a child whose switch never comes would
		// otherwise hold the suite until its timeout.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0])
		cmd.Env = append([]string{memoryChildEnv + "=" + tt.cmd}, tt.env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v: %s", tt.cmd, tt.env, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tt.want {
			t.Errorf("%s %v: GOGC and limit, then after a collection: %s, want %s", tt.cmd, tt.env, got, tt.want)
		}
	}
}
