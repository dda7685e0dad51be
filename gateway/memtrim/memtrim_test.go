package memtrim

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

const exe = "/usr/local/bin/fhirgate"

// A listing with every kind of mapping the gateway has.
const listing = `00400000-01a00000 r-xp 00000000 00:20 123 /usr/local/bin/fhirgate
Size:              22528 kB
Rss:               14628 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
01a00000-03400000 r--p 01600000 00:20 123 /usr/local/bin/fhirgate
Size:              26624 kB
Rss:               25656 kB
Private_Dirty:     25656 kB
Anonymous:             0 kB
03400000-03600000 rw-p 03000000 00:20 123 /usr/local/bin/fhirgate
Rss:                2320 kB
Private_Dirty:      1200 kB
Anonymous:          1200 kB
03600000-03700000 r--p 03200000 00:20 123 /usr/local/bin/fhirgate
Rss:                  64 kB
Private_Dirty:        64 kB
Anonymous:            64 kB
03700000-03800000 r--p 03300000 00:20 123 /usr/local/bin/fhirgate
Rss:                  64 kB
03800000-03900000 r--s 03300000 00:20 123 /usr/local/bin/fhirgate
Rss:                  64 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
c000000000-c004000000 rw-p 00000000 00:00 0
Rss:               28472 kB
Private_Dirty:     28472 kB
Anonymous:         28472 kB
7f0000000000-7f0000100000 r-xp 00000000 08:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 840 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
7f0000200000-7f0000300000 r--p 00000000 08:01 99 /usr/local/bin/fhirgate (deleted)
Rss:                 100 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
`

// Only the clean read-only private mappings of the executable are
// released: not its data, not a relocated (copied) read-only page, not
// one whose counts are missing, not a shared mapping, not libc, not the
// heap, not another file.
func TestReleasable(t *testing.T) {
	got, err := Releasable(strings.NewReader(listing), exe)
	if err != nil {
		t.Fatal(err)
	}
	want := []Region{{0x400000, 0x1a00000, 14628 << 10}, {0x1a00000, 0x3400000, 25656 << 10}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("region %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if r, _ := Releasable(strings.NewReader("garbage\n\n01-02 r--p 0 0 0\n"), exe); len(r) != 0 {
		t.Errorf("from garbage: %+v", r)
	}
}

// initialised is data of the binary changed at run time: it must survive.
var initialised = []string{"a", "b"}

// In this process: the executable's resident clean pages go, code and
// data work after it, written data keeps its value.
func TestReleaseBinaryPages(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	initialised[0] = "changed"
	before := exeResident(t)
	released, err := ReleaseBinaryPages()
	if err != nil {
		t.Fatal(err)
	}
	after := exeResident(t)
	if released <= 0 || after >= before {
		t.Fatalf("released %d bytes; the executable's resident pages %d → %d", released, before, after)
	}
	t.Logf("released %d KiB; executable resident %d → %d KiB", released>>10, before>>10, after>>10)
	if initialised[0] != "changed" || initialised[1] != "b" || strings.Repeat("x", 3) != "xxx" {
		t.Errorf("data after release: %v", initialised)
	}
}

// exeResident sums the Rss of the executable's mappings.
func exeResident(t *testing.T) int64 {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") {
			in = len(f) >= 6 && strings.Join(f[5:], " ") == exe
			continue
		}
		if in && f[0] == "Rss:" && len(f) >= 2 {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("smaps: %q", line)
			}
			sum += n << 10
		}
	}
	return sum
}
