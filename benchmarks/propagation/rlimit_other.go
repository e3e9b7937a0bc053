//go:build !unix

package propagation

// RaiseFileLimit reports no limit: outside Unix there is no RLIMIT_NOFILE
// to raise, and want is returned as the limit in force.
func RaiseFileLimit(want uint64) (uint64, error) { return want, nil }
