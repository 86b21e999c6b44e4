package shipper

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// logCapacity is how many bytes Docker keeps of a json-file log:
// max-size × max-file, 0 if unbounded or unreadable.
func logCapacity(cfg map[string]string) int64 {
	size, err := parseDockerSize(cfg["max-size"])
	if err != nil || size <= 0 {
		return 0
	}
	files := int64(1)
	if v, err := strconv.ParseInt(strings.TrimSpace(cfg["max-file"]), 10, 64); err == nil && v > 0 {
		files = v
	}
	if size > math.MaxInt64/files {
		return math.MaxInt64
	}
	return size * files
}

// parseDockerSize parses Docker's max-size log option: a decimal number
// with an optional unit k, m, g, t or p (powers of 1000, as Docker reads
// them), optionally followed by "i" and/or "b" and preceded by one space:
// "100", "10m", "1.5g", "512kb", "10 MB".
func parseDockerSize(s string) (int64, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if n := len(s); s[n-1] == 'b' || s[n-1] == 'B' {
		s = s[:n-1]
	}
	if n := len(s); n > 0 && (s[n-1] == 'i' || s[n-1] == 'I') {
		s = s[:n-1]
	}
	mult := 1.0
	if n := len(s); n > 0 {
		if i := strings.IndexByte("kmgtp", s[n-1]|0x20); i >= 0 && s[n-1] >= 'A' {
			mult, s = math.Pow(1000, float64(i+1)), s[:n-1]
		}
	}
	s = strings.TrimSuffix(s, " ")
	if !validDecimal(s) {
		return 0, fmt.Errorf("invalid size %q", in)
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q", in)
	}
	v := n * mult
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q out of range", in)
	}
	return int64(v), nil
}

// validDecimal reports whether s is digits with at most one inner point.
func validDecimal(s string) bool {
	digits, point := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !point && digits > 0 && i < len(s)-1:
			point = true
		default:
			return false
		}
	}
	return digits > 0
}
