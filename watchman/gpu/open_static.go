//go:build !nvml

package gpu

// Supported reports whether this build has GPU support.
const Supported = false

// Open returns ErrUnsupported: this build has no NVML support.
func Open(procRoot string) (Reader, error) { return nil, ErrUnsupported }
