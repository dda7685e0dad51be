package memtrim

import (
	"os"
	"syscall"
)

// ReleaseBinaryPages drops this process's mappings of the clean read-only
// pages of its executable (see the package comment) and returns how many
// bytes were resident in them. Call it once the process has started and
// is warm: what it touches after is mapped back as it goes.
func ReleaseBinaryPages() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	regions, err := Releasable(f, exe)
	if err != nil {
		return 0, err
	}
	var released int64
	for _, r := range regions {
		// Addresses only: no Go pointer is made of them.
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, r.Start, r.End-r.Start, syscall.MADV_DONTNEED); e != 0 {
			return released, e
		}
		// A page used again is mapped alone: without this the kernel maps
		// the cached pages around it too (fault-around, 64 KiB), and
		// the type data and tables the gateway reads scattered over its
		// read-only data would map most of it back.
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, r.Start, r.End-r.Start, syscall.MADV_RANDOM); e != 0 {
			return released, e
		}
		released += r.Resident
	}
	return released, nil
}
