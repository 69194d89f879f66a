package builtin_test

import (
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
