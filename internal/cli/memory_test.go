package cli

import (
	"runtime"
	"testing"
)

func TestMemoryFor(t *testing.T) {
	t.Parallel()
	late := memorySettings{percent: -1, limit: hashHeapFloor, setPercent: true, setLimit: true, late: true}
	tests := []struct {
		cmd  string
		env  []string // which of GOGC and GOMEMLIMIT are set
		want memorySettings
	}{
		{"check", nil, late},
		{"hash", nil, late},
		{"upload", nil, memorySettings{percent: gcPercent, limit: memoryLimit, setPercent: true, setLimit: true}},
		{"download", nil, memorySettings{percent: gcPercent, limit: memoryLimit, setPercent: true, setLimit: true}},
		{"prune", nil, memorySettings{percent: gcPercent, limit: pruneMemoryLimit, setPercent: true, setLimit: true}},
		// The user's setting stands, and check and hash then collect as the others.
		{"check", []string{"GOGC"}, memorySettings{percent: gcPercent, limit: memoryLimit, setLimit: true}},
		{"hash", []string{"GOMEMLIMIT"}, memorySettings{percent: gcPercent, limit: memoryLimit, setPercent: true}},
		{"prune", []string{"GOMEMLIMIT"}, memorySettings{percent: gcPercent, limit: pruneMemoryLimit, setPercent: true}},
		{"upload", []string{"GOGC", "GOMEMLIMIT"}, memorySettings{percent: gcPercent, limit: memoryLimit}},
	}
	for _, tt := range tests {
		lookup := func(name string) (string, bool) {
			for _, e := range tt.env {
				if e == name {
					return "50", true
				}
			}
			return "", false
		}
		if got := memoryFor(tt.cmd, lookup); got != tt.want {
			t.Errorf("%s with %v set: %+v, want %+v", tt.cmd, tt.env, got, tt.want)
		}
	}
}

// The switch from no collection to the usual settings happens at the first
// collection, whatever starts it.
func TestAfterCollection(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	afterCollection(func() { close(done) })
	runtime.GC()
	<-done
}
