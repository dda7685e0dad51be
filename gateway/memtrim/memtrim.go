// Package memtrim gives back to the kernel the pages of the gateway's own
// binary that only its start needed.
//
// Starting, the gateway reads most of its 70 MB binary: the init code of
// google/fhir's STU3 and R4 packages and their raw protobuf descriptors,
// which jsonformat's initialisation unmarshals in full. Those pages stay
// mapped — 35–40 MiB of an idle gateway's resident set — though the
// process never reads most of them again. They are clean, read-only pages
// of a file: dropping the process's mappings of them (madvise
// MADV_DONTNEED) loses nothing. The pages stay in the kernel's page cache
// (shared, reclaimable, not the process's resident set), and the few the
// gateway uses again are mapped back at their next use by a minor fault,
// without reading the disk. What comes back is more than the bytes read:
// the kernel maps a large folio of the page cache whole at a fault in it,
// and the runtime reads its function tables (.gopclntab) wherever a stack
// is walked — in the benchmark 12–17 MiB of the binary are mapped again
// within a second, against 40 MiB before the release.
//
// Only read-only private mappings of the executable holding no private
// (copied) page are released: writable data, relocated read-only data of
// a position-independent build and the heap are never touched, because
// for them MADV_DONTNEED would throw away contents the file does not have.
package memtrim

import (
	"bufio"
	"io"
	"runtime/debug"
	"strconv"
	"strings"
)

// AfterStart is what a process calls once it has started, before it
// serves: a collection that returns the heap the start left behind
// (parsed configuration, compiled profiles) to the kernel at once instead
// of after the scavenger's minutes — and, run before the release, it
// reads what a collection reads, so that less comes back after it —,
// then ReleaseBinaryPages. It returns the bytes released of the binary.
func AfterStart() (int64, error) {
	debug.FreeOSMemory()
	return ReleaseBinaryPages()
}

// Region is an address range of a mapping to release.
type Region struct {
	Start, End uintptr
	Resident   int64 // bytes resident when read
}

// Releasable reads a /proc/<pid>/smaps listing and returns the mappings
// of the file exe that are private, not writable, and hold no private
// (anonymous) page: the ones whose pages the file itself holds. A page
// copied on write (a relocation) counts as Anonymous; a page of the page
// cache not yet written back (a binary just built) counts as
// Private_Dirty but is the file's, and is released. A mapping whose
// Anonymous field is missing or not zero is left alone, and so is every
// mapping when the listing cannot be read whole.
func Releasable(smaps io.Reader, exe string) ([]Region, error) {
	type mapping struct {
		r         Region
		candidate bool
		anon      int64 // -1: field not seen
	}
	var (
		out []Region
		cur *mapping
	)
	flush := func() {
		if cur != nil && cur.candidate && cur.anon == 0 {
			out = append(out, cur.r)
		}
		cur = nil
	}
	sc := bufio.NewScanner(smaps)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") {
			// A mapping's header: start-end perms offset dev inode [path].
			flush()
			cur = &mapping{anon: -1}
			start, end, ok := strings.Cut(fields[0], "-")
			s, err1 := strconv.ParseUint(start, 16, 64)
			e, err2 := strconv.ParseUint(end, 16, 64)
			if !ok || err1 != nil || err2 != nil || len(fields) < 6 {
				continue
			}
			cur.r = Region{Start: uintptr(s), End: uintptr(e)}
			perms := fields[1]
			path := strings.Join(fields[5:], " ")
			cur.candidate = path == exe && (perms == "r--p" || perms == "r-xp")
			continue
		}
		if cur == nil {
			continue
		}
		switch fields[0] {
		case "Rss:", "Anonymous:":
			if len(fields) < 3 || fields[2] != "kB" {
				continue
			}
			n, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				continue
			}
			switch fields[0] {
			case "Rss:":
				cur.r.Resident = n << 10
			case "Anonymous:":
				cur.anon = n
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	flush()
	return out, nil
}
