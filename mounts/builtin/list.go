package builtin

import (
	"context"
	"errors"
	"math"
	"math/bits"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// Parallel listing of one folder (docs/SEMANTICS.md, "Listing").
//
// The first page is listed alone: a folder that fits in it is done. For a
// bigger one the key space after the first page is cut into ranges
// (after, end], each listed by its own stream starting with StartAfter =
// after, concurrently up to Spec.ListConcurrency; whenever a stream ends and
// a slot is free, the range with the most work left is cut again. Split
// points come from a previous listing of the same folder when there was
// one, else they are interpolated from the keys seen so far. Entries go to
// the caller in key order as ranges complete: each range keeps exactly the
// entries in (after, end], so the concatenation is the sequential
// listing's key set (a common prefix that straddles a split point is
// returned by both streams and kept by the first only).
//
// A provider that ignores StartAfter is detected on the first answer of a
// range (an entry at or before its start): the listing goes on as one
// stream, and later listings of this mount do not try again. A range that
// fails is listed again as one stream from the last entry given out.
// Throttling answers (503 SlowDown, 429) halve the mount's listing
// concurrency, which then grows back by one per round of successes (AIMD).

// listPageSize is the MaxKeys of every listing request.
var listPageSize int32 = 1000

// listChunkPages is how many pages a range cut by interpolation should hold.
const listChunkPages = 4

func (f *FS) listConcurrency() int {
	return max(1, f.spec.ListConcurrency) // the Spec arrives complete (config's key table)
}

// listState is a mount's listing state shared by its listings.
type listState struct {
	once sync.Once
	// noStartAfter: the provider ignored StartAfter once; list sequentially.
	noStartAfter atomic.Bool
	// startAfterOK: a range's answer has shown that StartAfter works.
	startAfterOK atomic.Bool
	aimd         *aimd
}

func (f *FS) listing() *listState {
	f.lst.once.Do(func() { f.lst.aimd = newAIMD(f.listConcurrency()) })
	return &f.lst
}

// listStream lists the folder prefix (delimiter "/") and hands its pages to
// out in key order; out returns false to stop. It returns the first error
// that ends the listing.
func (f *FS) listStream(ctx context.Context, prefix string, out func(ListPage) bool) error {
	ls := f.listing()
	p, err := f.listRetry(ctx, func(ctx context.Context) (ListPage, error) {
		return f.cl.List(ctx, prefix, "/", "", listPageSize)
	})
	if err != nil {
		return err
	}
	if !out(p) || p.Next == "" {
		return nil
	}
	if f.listConcurrency() <= 1 || ls.noStartAfter.Load() {
		return f.listSequential(ctx, prefix, p.Next, "", out)
	}
	pl := &parallelList{f: f, ls: ls, prefix: prefix, verdict: make(chan struct{}), head: firstEntry(p)}
	if ls.startAfterOK.Load() {
		close(pl.verdict)
		pl.verdictDone = true
	}
	return pl.run(ctx, p, out)
}

// listSequential goes on from token (or, when token is "", from the keys
// after after), dropping entries at or before after.
func (f *FS) listSequential(ctx context.Context, prefix, token, after string, out func(ListPage) bool) error {
	first := true
	for {
		var p ListPage
		var err error
		if first && token == "" {
			p, err = f.listRetry(ctx, func(ctx context.Context) (ListPage, error) {
				return f.cl.ListAfter(ctx, prefix, "/", after, listPageSize)
			})
		} else {
			tok := token
			p, err = f.listRetry(ctx, func(ctx context.Context) (ListPage, error) {
				return f.cl.List(ctx, prefix, "/", tok, listPageSize)
			})
		}
		first = false
		if err != nil {
			return err
		}
		if after != "" {
			p, _ = clip(p, after, "")
		}
		if !out(p) || p.Next == "" {
			return nil
		}
		token = p.Next
	}
}

// listRetry makes one listing request through the mount's AIMD limiter,
// retrying throttling answers with backoff.
func (f *FS) listRetry(ctx context.Context, req func(context.Context) (ListPage, error)) (ListPage, error) {
	a := f.listing().aimd
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if err := a.acquire(ctx); err != nil {
			return ListPage{}, err
		}
		p, err := req(ctx)
		throttled := err != nil && isThrottle(err)
		a.release(err == nil, throttled)
		if !throttled || attempt >= 6 {
			return p, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ListPage{}, ctx.Err()
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// isThrottle says whether err is S3's "slow down" (503 SlowDown, 429).
func isThrottle(err error) bool {
	switch code(err) {
	case "SlowDown", "Throttling", "ThrottlingException", "TooManyRequests", "RequestLimitExceeded", "RequestThrottled":
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode() == 429 || re.HTTPStatusCode() == 503
	}
	return false
}

// aimd limits concurrent listing requests: halved on throttling, grown by
// one per round of successes, between 1 and max.
type aimd struct {
	mu       sync.Mutex
	limit    float64
	max      float64
	inflight int
	wake     chan struct{}
}

func newAIMD(max int) *aimd {
	return &aimd{limit: float64(max), max: float64(max), wake: make(chan struct{})}
}

func (a *aimd) acquire(ctx context.Context) error {
	for {
		a.mu.Lock()
		if a.inflight < int(a.limit) {
			a.inflight++
			a.mu.Unlock()
			return nil
		}
		w := a.wake
		a.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (a *aimd) release(ok, throttled bool) {
	a.mu.Lock()
	a.inflight--
	switch {
	case throttled:
		a.limit = max(1, a.limit/2)
	case ok:
		a.limit = min(a.max, a.limit+1/a.limit)
	}
	close(a.wake)
	a.wake = make(chan struct{})
	a.mu.Unlock()
}

// Limit is the current concurrency limit (for tests and stats).
func (a *aimd) Limit() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.limit
}

var errIgnoresStartAfter = errors.New("the endpoint ignores ListObjectsV2's StartAfter")

// keyRange is one stream of a parallel listing: the entries in
// (after, end] ("" end: no end).
type keyRange struct {
	after string

	mu      sync.Mutex
	end     string
	pages   []ListPage // filtered pages not yet given out
	last    string     // the last entry kept (or after)
	span    [2]string  // first and last entry of the last page
	seen    int        // pages with entries this stream has listed
	done    bool
	err     error
	running bool
	wake    chan struct{}
}

func (r *keyRange) notify() {
	close(r.wake)
	r.wake = make(chan struct{})
}

type parallelList struct {
	f      *FS
	ls     *listState
	prefix string
	head   string // the folder's first entry

	mu     sync.Mutex
	ranges []*keyRange
	alpha  [256]bool // bytes seen in entries after the prefix
	active int

	verdict     chan struct{} // closed once StartAfter is known to work or not
	verdictDone bool
	wg          sync.WaitGroup
}

func (pl *parallelList) learn(p ListPage) {
	for _, o := range p.Objects {
		for i := len(pl.prefix); i < len(o.Key); i++ {
			pl.alpha[o.Key[i]] = true
		}
	}
	for _, s := range p.Prefixes {
		for i := len(pl.prefix); i < len(s); i++ {
			pl.alpha[s[i]] = true
		}
	}
}

func (pl *parallelList) setVerdict(ok bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.verdictDone {
		return
	}
	pl.verdictDone = true
	if ok {
		pl.ls.startAfterOK.Store(true)
	} else {
		pl.ls.noStartAfter.Store(true)
	}
	close(pl.verdict)
}

func (pl *parallelList) run(parent context.Context, first ListPage, out func(ListPage) bool) error {
	ctx, cancel := context.WithCancel(parent)
	defer func() {
		cancel()
		pl.wg.Wait()
	}()
	lastFirst := lastEntry(first)
	r0 := &keyRange{after: lastFirst, last: lastFirst, wake: make(chan struct{})}
	r0.span = [2]string{firstEntry(first), lastFirst}
	r0.seen = 1
	pl.mu.Lock()
	pl.learn(first)
	pl.ranges = []*keyRange{r0}
	pl.mu.Unlock()
	pl.start(ctx, r0, first.Next)
	if hints := pl.f.meta.splitHints(pl.prefix); len(hints) > 0 {
		// Evenly spaced points of the previous listing after this page.
		i := sort.SearchStrings(hints, lastFirst+"\x00")
		hints = hints[i:]
		n := pl.f.listConcurrency() - 1
		var pts []string
		for j := 1; j <= n && len(hints) > 0; j++ {
			k := j*len(hints)/(n+1) - 1
			if k >= 0 && (len(pts) == 0 || hints[k] > pts[len(pts)-1]) {
				pts = append(pts, hints[k])
			}
		}
		pl.splitAt(ctx, r0, pts)
	}
	pl.rebalance(ctx)

	var all []string // split hints for the next listing of this folder
	emitted := lastFirst
	count := len(first.Objects) + len(first.Prefixes)
	for i := 0; ; i++ {
		pl.mu.Lock()
		if i >= len(pl.ranges) {
			pl.mu.Unlock()
			break
		}
		r := pl.ranges[i]
		pl.mu.Unlock()
		for {
			r.mu.Lock()
			pages, done, err, w := r.pages, r.done, r.err, r.wake
			r.pages = nil
			r.mu.Unlock()
			for _, p := range pages {
				if n := len(p.Objects) + len(p.Prefixes); n > 0 {
					emitted = lastEntry(p)
					count += n
					if count/int(listPageSize) > len(all) {
						all = append(all, emitted)
					}
					if !out(p) {
						return nil
					}
				}
			}
			if err != nil {
				// This stream failed (or the endpoint ignores StartAfter):
				// the rest as one stream after the last entry given out.
				cancel()
				pl.wg.Wait()
				if errors.Is(err, errIgnoresStartAfter) {
					// The first stream then went on to the end alone, and
					// everything it listed has been given out.
					return nil
				}
				if !pl.ls.startAfterOK.Load() {
					return err
				}
				return pl.f.listSequential(parent, pl.prefix, "", emitted, out)
			}
			if done {
				break
			}
			select {
			case <-w:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	pl.f.meta.putSplitHints(pl.prefix, all)
	return nil
}

// start runs r's stream from token ("" for a StartAfter request).
func (pl *parallelList) start(ctx context.Context, r *keyRange, token string) {
	pl.mu.Lock()
	pl.active++
	pl.mu.Unlock()
	r.mu.Lock()
	r.running = true
	r.mu.Unlock()
	pl.wg.Add(1)
	go func() {
		defer pl.wg.Done()
		err := pl.work(ctx, r, token)
		r.mu.Lock()
		r.done, r.running = true, false
		if err != nil && r.err == nil {
			r.err = err
		}
		r.notify()
		r.mu.Unlock()
		pl.mu.Lock()
		pl.active--
		pl.mu.Unlock()
		if err == nil && ctx.Err() == nil {
			pl.rebalance(ctx)
		}
	}()
}

func (pl *parallelList) work(ctx context.Context, r *keyRange, token string) error {
	f := pl.f
	first := token == ""
	lower := r.after
	for {
		var p ListPage
		var err error
		if token == "" {
			p, err = f.listRetry(ctx, func(ctx context.Context) (ListPage, error) {
				return f.cl.ListAfter(ctx, pl.prefix, "/", r.after, listPageSize)
			})
		} else {
			tok := token
			p, err = f.listRetry(ctx, func(ctx context.Context) (ListPage, error) {
				return f.cl.List(ctx, pl.prefix, "/", tok, listPageSize)
			})
		}
		if err != nil {
			return err
		}
		if first {
			first = false
			// A provider that ignores StartAfter answers with the folder's
			// first entry (only a common prefix containing StartAfter may
			// come before it otherwise).
			if e, _, ok := firstRaw(p); ok && e <= r.after && e == pl.head {
				pl.setVerdict(false)
				return errIgnoresStartAfter
			}
			pl.setVerdict(true)
		}
		pl.mu.Lock()
		pl.learn(p)
		pl.mu.Unlock()
		r.mu.Lock()
		kept, past := clip(p, lower, r.end)
		if n := len(kept.Objects) + len(kept.Prefixes); n > 0 {
			r.pages = append(r.pages, kept)
			r.last = lastEntry(kept)
			r.span = [2]string{firstEntry(kept), r.last}
			r.seen++
			r.notify()
		}
		r.mu.Unlock()
		if p.Next == "" {
			return nil
		}
		if past {
			// Past its end: done, unless StartAfter is not known to work
			// yet (then the other streams may be wrong, and this one must
			// be able to go on alone).
			select {
			case <-pl.verdict:
			case <-ctx.Done():
				return ctx.Err()
			}
			if !pl.ls.noStartAfter.Load() {
				return nil
			}
			// The other streams are useless: this one lists the rest,
			// from this page again (its entries after the end were
			// dropped).
			r.mu.Lock()
			r.end, lower = "", r.last
			r.mu.Unlock()
			continue
		}
		token = p.Next
	}
}

// rebalance cuts the range with the most work left while slots are free.
func (pl *parallelList) rebalance(ctx context.Context) {
	if pl.ls.noStartAfter.Load() {
		return
	}
	pl.mu.Lock()
	free := pl.f.listConcurrency() - pl.active
	var best *keyRange
	bestWork := -1.0
	for _, r := range pl.ranges {
		r.mu.Lock()
		// Only a stream that has listed entries of its own knows the
		// density of its range; an empty range is never cut.
		if r.running && !r.done && r.seen > 0 {
			w := pl.workLeftLocked(r)
			if w > bestWork {
				best, bestWork = r, w
			}
		}
		r.mu.Unlock()
	}
	pl.mu.Unlock()
	if free <= 0 || best == nil || bestWork < 2 {
		return
	}
	pl.mu.Lock()
	best.mu.Lock()
	points := pl.interpolate(best, free)
	best.mu.Unlock()
	pl.mu.Unlock()
	pl.splitAt(ctx, best, points)
}

// workLeftLocked estimates the pages left in r (infinite with no end).
func (pl *parallelList) workLeftLocked(r *keyRange) float64 {
	if r.end == "" {
		return math.Inf(1)
	}
	frame := pl.frame(r.span[0], r.span[1], r.end)
	a, b, e := frame.num(r.span[0]), frame.num(r.span[1]), frame.num(r.end)
	if b <= a {
		return 2 // unknown density: worth one cut
	}
	return float64(e-b) / float64(b-a)
}

// interpolate proposes up to n split points inside r's rest (r locked).
func (pl *parallelList) interpolate(r *keyRange, n int) []string {
	var pts []string
	if r.end == "" {
		fr := pl.frame(r.span[0], r.span[1], r.last)
		a, b := fr.num(r.span[0]), fr.num(r.span[1])
		if b <= a {
			return nil
		}
		step := (b - a) * listChunkPages
		if step/listChunkPages != b-a {
			return nil
		}
		for i, v := 0, fr.num(r.last); i < n; i++ {
			next := v + step
			if next < v || next > fr.top {
				break
			}
			v = next
			pts = append(pts, fr.str(v))
		}
	} else {
		fr := pl.frame(r.last, r.end, "")
		a, e := fr.num(r.last), fr.num(r.end)
		if e <= a {
			return nil
		}
		step := (e - a) / uint64(n+1)
		for i := 1; i <= n && step > 0; i++ {
			pts = append(pts, fr.str(a+uint64(i)*step))
		}
	}
	return pts
}

// splitAt cuts r at the points inside (r.last, r.end) and starts a stream
// for each new range.
func (pl *parallelList) splitAt(ctx context.Context, r *keyRange, points []string) {
	pl.mu.Lock()
	r.mu.Lock()
	var keep []string
	lo := r.last
	for _, p := range points {
		if !utf8.ValidString(p) {
			p = validPrefix(p)
		}
		if p > lo && (r.end == "" || p < r.end) && strings.HasPrefix(p, pl.prefix) && len(p) <= len(r.last)+64 {
			keep = append(keep, p)
			lo = p
		}
	}
	if free := max(0, pl.f.listConcurrency()-pl.active); len(keep) > free {
		keep = keep[:free]
	}
	if len(keep) == 0 || r.done {
		r.mu.Unlock()
		pl.mu.Unlock()
		return
	}
	oldEnd := r.end
	r.end = keep[0]
	r.mu.Unlock()
	var added []*keyRange
	for i, p := range keep {
		end := oldEnd
		if i+1 < len(keep) {
			end = keep[i+1]
		}
		nr := &keyRange{after: p, end: end, last: p, wake: make(chan struct{})}
		nr.span = r.span
		added = append(added, nr)
	}
	idx := 0
	for j, x := range pl.ranges {
		if x == r {
			idx = j
		}
	}
	rs := append([]*keyRange{}, pl.ranges[:idx+1]...)
	rs = append(rs, added...)
	pl.ranges = append(rs, pl.ranges[idx+1:]...)
	pl.mu.Unlock()
	for _, nr := range added {
		pl.start(ctx, nr, "")
	}
}

// keyFrame maps keys to numbers for interpolation: the bytes after a
// common prefix, as digits in the alphabet of bytes seen so far.
type keyFrame struct {
	base   string
	alpha  []byte
	rank   [256]uint64
	digits int
	top    uint64
}

func (pl *parallelList) frame(a, b, c string) keyFrame {
	n := commonPrefix(a, b)
	if c != "" {
		n = min(n, commonPrefix(a, c))
	}
	// Start two bytes early, so that growth carries into higher digits.
	n = max(len(pl.prefix), n-2)
	n = min(n, len(a))
	fr := keyFrame{base: a[:n]}
	for i, seen := range pl.alpha {
		if seen {
			fr.alpha = append(fr.alpha, byte(i))
		}
	}
	if len(fr.alpha) < 2 {
		fr.alpha = []byte{'0', 'z'}
	}
	r := uint64(0)
	for i := 0; i < 256; i++ {
		if r+1 < uint64(len(fr.alpha)) && byte(i) >= fr.alpha[r+1] {
			r++
		}
		fr.rank[i] = r
	}
	bitsPer := bits.Len(uint(len(fr.alpha) - 1))
	fr.digits = 62 / bitsPer
	fr.top = 1
	for i := 0; i < fr.digits; i++ {
		fr.top *= uint64(len(fr.alpha))
	}
	fr.top--
	return fr
}

func (fr keyFrame) num(s string) uint64 {
	var v uint64
	B := uint64(len(fr.alpha))
	for i := 0; i < fr.digits; i++ {
		d := uint64(0)
		if j := len(fr.base) + i; j < len(s) {
			d = fr.rank[s[j]]
		}
		v = v*B + d
	}
	return v
}

func (fr keyFrame) str(v uint64) string {
	B := uint64(len(fr.alpha))
	buf := make([]byte, fr.digits)
	for i := fr.digits - 1; i >= 0; i-- {
		buf[i] = fr.alpha[v%B]
		v /= B
	}
	return fr.base + strings.TrimRight(string(buf), string(fr.alpha[:1]))
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// validPrefix cuts s before its first invalid UTF-8 byte (a split point
// must be a valid key for StartAfter).
func validPrefix(s string) string {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			return s[:i]
		}
		i += size
	}
	return s
}

// clip keeps the entries of p in (after, end] ("" end: no end); past says
// whether p had an entry after end.
func clip(p ListPage, after, end string) (ListPage, bool) {
	in := func(k string) bool { return k > after && (end == "" || k <= end) }
	past := false
	out := ListPage{Next: p.Next}
	for _, o := range p.Objects {
		if in(o.Key) {
			out.Objects = append(out.Objects, o)
		} else if end != "" && o.Key > end {
			past = true
		}
	}
	for _, s := range p.Prefixes {
		if in(s) {
			out.Prefixes = append(out.Prefixes, s)
		} else if end != "" && s > end {
			past = true
		}
	}
	return out, past
}

func lastEntry(p ListPage) string {
	l := ""
	if n := len(p.Objects); n > 0 {
		l = p.Objects[n-1].Key
	}
	if n := len(p.Prefixes); n > 0 && p.Prefixes[n-1] > l {
		l = p.Prefixes[n-1]
	}
	return l
}

func firstEntry(p ListPage) string {
	e, _, _ := firstRaw(p)
	return e
}

func firstRaw(p ListPage) (string, bool, bool) {
	switch {
	case len(p.Objects) > 0 && (len(p.Prefixes) == 0 || p.Objects[0].Key < p.Prefixes[0]):
		return p.Objects[0].Key, false, true
	case len(p.Prefixes) > 0:
		return p.Prefixes[0], true, true
	}
	return "", false, false
}
