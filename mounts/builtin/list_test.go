package builtin

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// listAll runs the folder listing (parallel where it applies) and returns
// its entries in the order given: keys, and common prefixes marked "P:".
func listAll(t *testing.T, f *FS, prefix string) []string {
	t.Helper()
	var out []string
	err := f.listStream(context.Background(), prefix, func(p ListPage) bool {
		oi, pi := 0, 0
		for oi < len(p.Objects) || pi < len(p.Prefixes) {
			if pi >= len(p.Prefixes) || (oi < len(p.Objects) && p.Objects[oi].Key < p.Prefixes[pi]) {
				out = append(out, p.Objects[oi].Key)
				oi++
			} else {
				out = append(out, "P:"+p.Prefixes[pi])
				pi++
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("listing %q: %v", prefix, err)
	}
	return out
}

// listSeq is the reference: one ListObjectsV2 stream.
func listSeq(t *testing.T, cl ObjectClient, prefix string) []string {
	t.Helper()
	var out []string
	token := ""
	for {
		p, err := cl.List(context.Background(), prefix, "/", token, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range p.Objects {
			out = append(out, o.Key)
		}
		for _, s := range p.Prefixes {
			out = append(out, "P:"+s)
		}
		if p.Next == "" {
			break
		}
		token = p.Next
	}
	sort.Slice(out, func(i, j int) bool { return strings.TrimPrefix(out[i], "P:") < strings.TrimPrefix(out[j], "P:") })
	return out
}

// countingClient counts ListAfter calls (the parallel streams).
type countingClient struct {
	ObjectClient
	after  atomic.Int64
	onList func()
}

func (c *countingClient) ListAfter(ctx context.Context, prefix, delim, startAfter string, max int32) (ListPage, error) {
	c.after.Add(1)
	if c.onList != nil {
		c.onList()
	}
	return c.ObjectClient.ListAfter(ctx, prefix, delim, startAfter, max)
}

func (c *countingClient) List(ctx context.Context, prefix, delim, token string, max int32) (ListPage, error) {
	if c.onList != nil {
		c.onList()
	}
	return c.ObjectClient.List(ctx, prefix, delim, token, max)
}

func withPageSize(t *testing.T, n int32) {
	old := listPageSize
	listPageSize = n
	t.Cleanup(func() { listPageSize = old })
}

func keySets() map[string][]string {
	r := rand.New(rand.NewSource(17))
	sets := map[string][]string{}
	var k []string
	for i := 0; i < 3000; i++ {
		k = append(k, fmt.Sprintf("d/object-%07d.txt", i))
	}
	sets["numbered"] = k
	k = nil
	odd := []string{" ", "!", "#", "$", "%", "&", "'", "(", "+", ",", "-", ".", "0", "9", ";", "=", "@", "A", "Z", "[", "]", "^",
		"_", "`", "a", "z", "{", "}", "~", "é", "ü", "日", "本", "語", "😀", "\u00a0", "ß"}
	for i := 0; i < 2500; i++ {
		var b strings.Builder
		for j := 0; j < 1+r.Intn(12); j++ {
			b.WriteString(odd[r.Intn(len(odd))])
		}
		k = append(k, "d/"+b.String())
	}
	sets["odd-and-utf8"] = k
	k = nil
	// Files, folders ("dirs") with many keys, and names that sort between
	// a name and its folder ("x", "x-1", "x.txt", "x/").
	for i := 0; i < 600; i++ {
		n := fmt.Sprintf("d/n%04d", i)
		k = append(k, n, n+"-1", n+".txt")
		if i%7 == 0 {
			for j := 0; j < 40; j++ {
				k = append(k, fmt.Sprintf("%s/inner%03d", n, j))
			}
		}
	}
	for j := 0; j < 3000; j++ {
		k = append(k, fmt.Sprintf("d/huge/%05d", j)) // one prefix over many pages
	}
	sets["dirs-at-boundaries"] = k
	k = nil
	// Dense clusters: keys that differ only far to the right, between
	// sparse ones.
	for i := 0; i < 1500; i++ {
		k = append(k, "d/aaaaaaaaaaaaaaaaaaaaaaaa"+fmt.Sprintf("%06x", r.Intn(1<<24)))
		k = append(k, "d/"+fmt.Sprintf("%c%08d", 'b'+r.Intn(20), r.Intn(100000000)))
	}
	sets["clusters"] = k
	return sets
}

func memWith(keys []string) *MemClient {
	m := NewMemClient()
	for _, key := range keys {
		m.Set(key, []byte("x"))
	}
	return m
}

// TestParallelListingKeySet: on every key set, with several concurrencies,
// on a provider that honours StartAfter and one that ignores it, and again
// with split points from the previous listing, the parallel listing gives
// exactly the sequential listing's entries in the same order, and lists in
// parallel where it can.
func TestParallelListingKeySet(t *testing.T) {
	withPageSize(t, 37)
	for name, keys := range keySets() {
		for _, conc := range []int{2, 5, 16} {
			for _, ignore := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/conc%d/ignore=%v", name, conc, ignore), func(t *testing.T) {
					m := memWith(keys)
					m.SetIgnoreStartAfter(ignore)
					cl := &countingClient{ObjectClient: m}
					f := testFS(cl)
					f.spec.ListConcurrency = conc
					want := listSeq(t, m, "d/")
					for round := 0; round < 2; round++ {
						got := listAll(t, f, "d/")
						if !slices.Equal(got, want) {
							t.Fatalf("round %d: %d entries, want %d; first difference: %s", round, len(got), len(want), firstDiff(got, want))
						}
					}
					if ignore {
						if !f.lst.noStartAfter.Load() {
							t.Fatal("a provider ignoring StartAfter was not detected")
						}
					} else if cl.after.Load() == 0 {
						t.Fatal("a big folder was not listed in parallel")
					}
				})
			}
		}
	}
}

func firstDiff(got, want []string) string {
	for i := 0; i < min(len(got), len(want)); i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d got %q want %q", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("at %d (one is a prefix of the other)", min(len(got), len(want)))
}

// TestParallelListingSmallFolder: a folder that fits in one page costs one
// request and no parallel stream.
func TestParallelListingSmallFolder(t *testing.T) {
	m := memWith([]string{"d/a", "d/b/c", "d/c"})
	cl := &countingClient{ObjectClient: m}
	f := testFS(cl)
	got := listAll(t, f, "d/")
	equalT(t, "entries", strings.Join(got, ","), "d/a,P:d/b/,d/c")
	equalT(t, "requests", m.ListCalls(), 1)
	equalT(t, "StartAfter streams", cl.after.Load(), int64(0))
}

func equalT(t *testing.T, what string, got, want any) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

// TestParallelListingConcurrentInserts: keys added while the folder is
// listed may or may not show, but every key present throughout shows
// exactly once, in order.
func TestParallelListingConcurrentInserts(t *testing.T) {
	withPageSize(t, 37)
	keys := keySets()["numbered"]
	m := memWith(keys)
	var mu sync.Mutex
	var added []string
	r := rand.New(rand.NewSource(3))
	cl := &countingClient{ObjectClient: m}
	cl.onList = func() {
		mu.Lock()
		k := fmt.Sprintf("d/object-%07d.txt%c", r.Intn(3000), 'a'+r.Intn(26))
		added = append(added, k)
		mu.Unlock()
		m.Set(k, []byte("new"))
	}
	f := testFS(cl)
	got := listAll(t, f, "d/")
	if !sort.StringsAreSorted(got) {
		t.Fatal("entries out of order")
	}
	seen := map[string]bool{}
	for _, k := range got {
		if seen[k] {
			t.Fatalf("%q listed twice", k)
		}
		seen[k] = true
	}
	for _, k := range keys {
		if !seen[k] {
			t.Fatalf("%q (present throughout) missing", k)
		}
	}
	isAdded := map[string]bool{}
	for _, k := range added {
		isAdded[k] = true
	}
	for k := range seen {
		if !slices.Contains(keys, k) && !isAdded[k] {
			t.Fatalf("%q listed but never stored", k)
		}
	}
	if cl.after.Load() == 0 {
		t.Fatal("not listed in parallel")
	}
}

// TestParallelListingSlowDown: throttling answers (503 SlowDown) are
// retried, halve the concurrency, and the key set stays exact.
func TestParallelListingSlowDown(t *testing.T) {
	withPageSize(t, 37)
	keys := keySets()["numbered"]
	m := memWith(keys)
	fc := NewFaultClient(m)
	var n atomic.Int64
	fc.Err = func(op, key string) error {
		if op == "List" && n.Add(1)%3 == 0 {
			return apiErr("SlowDown", "Please reduce your request rate.")
		}
		return nil
	}
	f := testFS(fc)
	f.spec.ListConcurrency = 16
	got := listAll(t, f, "d/")
	want := listSeq(t, m, "d/")
	if !slices.Equal(got, want) {
		t.Fatalf("%d entries, want %d; %s", len(got), len(want), firstDiff(got, want))
	}
	if l := f.lst.aimd.Limit(); l >= 16 {
		t.Fatalf("concurrency limit %v after throttling, want it lowered", l)
	}
}

// TestParallelListingStreamError: a stream that fails for good is listed
// again as one stream from the last entry given out; the key set is exact.
func TestParallelListingStreamError(t *testing.T) {
	withPageSize(t, 37)
	keys := keySets()["numbered"]
	m := memWith(keys)
	fc := NewFaultClient(m)
	cl := &countingClient{ObjectClient: fc}
	f := testFS(cl)
	// Warm up: the first listing learns that StartAfter works.
	want := listSeq(t, m, "d/")
	if got := listAll(t, f, "d/"); !slices.Equal(got, want) {
		t.Fatalf("warm-up: %s", firstDiff(got, want))
	}
	for _, failAt := range []int64{2, 5, 9} {
		var calls atomic.Int64
		fc.Err = func(op, key string) error {
			if op == "List" && calls.Add(1) == failAt {
				return apiErr("InternalError", "We encountered an internal error.")
			}
			return nil
		}
		f.meta.drop("")
		if got := listAll(t, f, "d/"); !slices.Equal(got, want) {
			t.Fatalf("failing request %d: %d entries, want %d; %s", failAt, len(got), len(want), firstDiff(got, want))
		}
	}
}
