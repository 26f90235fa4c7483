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
// collection, whatever starts it.
func TestAfterCollection(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	afterCollection(func() { close(done) })
	runtime.GC()
	<-done
}
