package gateway

import (
	"strconv"
	"strings"
	"time"
)

// ParseDuration reads a duration as Caddy's configuration does: Go's units,
// and "d" for a day of 24 hours ("7d", "1d12h").
func ParseDuration(s string) (time.Duration, error) {
	var total time.Duration
	for {
		i := strings.IndexByte(s, 'd')
		if i < 0 {
			break
		}
		// The number just before the "d": digits, maybe a fraction.
		j := i
		for j > 0 && (s[j-1] >= '0' && s[j-1] <= '9' || s[j-1] == '.') {
			j--
		}
		days, err := strconv.ParseFloat(s[j:i], 64)
		if err != nil {
			return 0, &time.ParseError{Value: s, Message: ": invalid duration"}
		}
		total += time.Duration(days * float64(24*time.Hour))
		s = s[:j] + s[i+1:]
	}
	if s == "" {
		return total, nil
	}
	d, err := time.ParseDuration(s)
	return total + d, err
}
