//go:build !linux

package memtrim

// ReleaseBinaryPages does nothing outside Linux: the gateway's images are
// Linux; elsewhere the kernel's own paging decides.
func ReleaseBinaryPages() (int64, error) { return 0, nil }
