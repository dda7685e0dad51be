package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// cpuShare is a CPU cgroup the proxies under test run in. During the
// saturation runs it holds them to a share of their core, so that the
// generator's core — wrk and the backend, a whole core — stays well ahead
// of even the fastest proxy: on two cores, nginx as a proxy is as fast as
// wrk and the backend together, and a guard on the direct rate would
// otherwise stop every run. Every proxy gets the same share; the
// fixed-rate runs lift the limit (throttling would add its own tail).
type cpuShare struct {
	dir string
	v2  bool // cgroup v2 (cpu.max) rather than v1 (cpu.cfs_quota_us)
}

// period is the bandwidth period: short, so that a throttled proxy waits
// at most a few milliseconds.
const periodUS = 10000

func newCPUShare(name string) (*cpuShare, error) {
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); err == nil {
		s := &cpuShare{dir: filepath.Join("/sys/fs/cgroup/cpu", name)}
		if err := os.Mkdir(s.dir, 0o755); err != nil {
			return nil, err
		}
		return s, os.WriteFile(filepath.Join(s.dir, "cpu.cfs_period_us"), []byte(strconv.Itoa(periodUS)), 0o644)
	}
	if data, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control"); err == nil && containsWord(string(data), "cpu") {
		s := &cpuShare{dir: filepath.Join("/sys/fs/cgroup", name), v2: true}
		return s, os.Mkdir(s.dir, 0o755)
	}
	return nil, fmt.Errorf("no CPU cgroup controller to hold the proxies to a share of their core (needs root and /sys/fs/cgroup/cpu or cgroup v2 with cpu); -proxy-share 1 runs without one")
}

// set limits the cgroup to share of one core; 1 or more lifts the limit.
func (s *cpuShare) set(share float64) error {
	quota := -1
	if share < 1 {
		quota = int(share * periodUS)
	}
	if s.v2 {
		v := "max " + strconv.Itoa(periodUS)
		if quota > 0 {
			v = fmt.Sprintf("%d %d", quota, periodUS)
		}
		return os.WriteFile(filepath.Join(s.dir, "cpu.max"), []byte(v), 0o644)
	}
	return os.WriteFile(filepath.Join(s.dir, "cpu.cfs_quota_us"), []byte(strconv.Itoa(quota)), 0o644)
}

// wrap returns a command line that joins the cgroup and then runs argv,
// so that every process and thread it starts is in it from the start.
func (s *cpuShare) wrap(argv []string) []string {
	return append([]string{"sh", "-c", `echo $$ > "$0" && exec "$@"`, filepath.Join(s.dir, "cgroup.procs")}, argv...)
}

// remove deletes the cgroup once its processes are gone.
func (s *cpuShare) remove() { os.Remove(s.dir) }

func containsWord(s, w string) bool { return slices.Contains(strings.Fields(s), w) }

// coreTime reads how long a CPU has been busy and in total since boot
// (/proc/stat, clock ticks): the proxy core's utilization during a run
// tells whether the proxy was the limit.
func coreTime(cpu string) (busy, total int64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || f[0] != "cpu"+cpu {
			continue
		}
		for i, v := range f[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			total += n
			if i != 3 && i != 4 { // idle, iowait
				busy += n
			}
		}
	}
	return busy, total
}
