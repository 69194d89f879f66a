package builtin_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
)

// TestLsLongMakesNoHead: in the connector permission model `ls -l` of a
// folder costs its listing only (zero HeadObject, counted by the mount's
// own Stats), shows the listing's sizes and LastModified; a stat outside a
// listing (a fresh mount) makes one HEAD; the metadata cache reports its
// entries and bound.
func TestLsLongMakesNoHead(t *testing.T) {
	testenv.RequireFUSE(t)
	if _, err := exec.LookPath("ls"); err != nil {
		t.Skip("ls not found")
	}
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "lsl", nil)
	c := m.Client(t)
	const n = 2100
	putMany(t, c, "lsl", "flat/", n)
	spec := m.Spec("lsl")
	spec.MetadataTTL = time.Minute
	dir, mnt := mount(t, spec)
	stats := func() mounts.Stats { return mnt.(mounts.StatsReporter).Stats() }
	// The folder's own lookup (outside any listing) is one HEAD of "flat"
	// and a one-key listing; then ls -l must add no HEAD.
	if _, err := os.Stat(filepath.Join(dir, "flat")); err != nil {
		t.Fatal(err)
	}
	heads := stats().Requests["HeadObject"]

	out, err := exec.Command("ls", "-l", "--time-style=+%s", filepath.Join(dir, "flat")).CombinedOutput()
	if err != nil {
		t.Fatalf("ls -l: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	equal(t, "ls -l lines (total + entries)", len(lines), n+1)
	if !strings.Contains(lines[1], " 6 ") || !strings.HasSuffix(lines[1], " f00000") {
		t.Fatalf("ls -l line %q: want size 6 and name f00000", lines[1])
	}
	st := stats()
	equal(t, "HeadObject requests for ls -l", st.Requests["HeadObject"]-heads, uint64(0))
	if st.Requests["ListObjectsV2"] < 3 {
		t.Fatalf("ListObjectsV2 requests = %d, want the listing's pages (≥ 3)", st.Requests["ListObjectsV2"])
	}
	if st.MetadataEntries < n || st.MetadataBytes <= 0 || st.MetadataLimit != 256<<20 {
		t.Fatalf("metadata cache stats %+v: want ≥ %d entries, some bytes, the default bound", st, n)
	}
	// Again, from the cache: still no HEAD.
	if out, err := exec.Command("ls", "-l", filepath.Join(dir, "flat")).CombinedOutput(); err != nil {
		t.Fatalf("ls -l again: %v\n%s", err, out)
	}
	equal(t, "HeadObject requests for ls -l again", stats().Requests["HeadObject"]-heads, uint64(0))

	// A stat outside any listing (a fresh mount) HEADs the object (and the
	// folder's own lookup HEADs "flat").
	dir2, mnt2 := mount(t, spec)
	fi, err := os.Stat(filepath.Join(dir2, "flat", "f00007"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "size by lookup", fi.Size(), int64(6))
	equal(t, "HeadObject requests for a stat by path", mnt2.(mounts.StatsReporter).Stats().Requests["HeadObject"], uint64(2))
}

// TestParallelListingRealMount: `ls -f` of a 20k-entry folder (with names
// outside [A-Za-z0-9], UTF-8, names that sort between a name and its
// folder, and folders spread across the key space) through a real mount
// on MinIO returns exactly the object names, listed in parallel streams.
func TestParallelListingRealMount(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "plist", nil)
	c := m.Client(t)
	const n = 20000
	putMany(t, c, "plist", "big/", n-400)
	want := map[string]bool{}
	for i := 0; i < n-400; i++ {
		want["f"+pad(i)] = true
	}
	var odd []string
	for i := 0; i < 100; i++ {
		odd = append(odd, fmt.Sprintf("ü-%d", i), fmt.Sprintf("name with space %d", i), fmt.Sprintf("f%05d-1", i*150), fmt.Sprintf("日本語 %d.txt", i))
	}
	for i, name := range odd {
		key := "big/" + name
		if i%4 == 2 {
			key = fmt.Sprintf("big/f%05d/inner", i/4*150) // a folder between f… names
			name = fmt.Sprintf("f%05d", i/4*150)
		}
		putObject(t, c, "plist", key, []byte("x"))
		want[name] = true
	}
	spec := m.Spec("plist")
	dir, mnt := mount(t, spec)
	out, err := exec.Command("ls", "-f", filepath.Join(dir, "big")).Output()
	if err != nil {
		t.Fatalf("ls -f: %v", err)
	}
	got := map[string]int{}
	for _, name := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if name != "." && name != ".." {
			got[name]++
		}
	}
	for name, k := range got {
		if k != 1 {
			t.Errorf("%q listed %d times", name, k)
		}
		if !want[name] {
			t.Errorf("%q listed but not stored", name)
		}
	}
	for name := range want {
		if got[name] == 0 {
			t.Errorf("%q missing", name)
		}
	}
	equal(t, "names listed", len(got), len(want))
	st := mnt.(mounts.StatsReporter).Stats()
	t.Logf("ls -f of %d names: %d ListObjectsV2 requests", len(want), st.Requests["ListObjectsV2"])
	equal(t, "HeadObject for ls -f", st.Requests["HeadObject"] <= 1, true) // the folder's own lookup
}
