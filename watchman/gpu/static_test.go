//go:build !nvml

package gpu

import (
	"errors"
	"testing"
)

func TestStaticBuildHasNoGPU(t *testing.T) {
	if Supported {
		t.Fatal("static build claims GPU support")
	}
	if _, err := Open("/proc"); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Open: %v", err)
	}
}
