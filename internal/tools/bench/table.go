package main

import (
	"fmt"
	"io"
	"math"
	"os/exec"
	"strings"
)

// ref names a sample set: a system's case.
type ref struct{ sys, key string }

// row is one line of the table. d1 and dp are the direct SDK's one-stream
// and parallel baselines; limit is what the built-in mount's ratio is
// taken against, target the bound on that ratio.
type row struct {
	label   string
	key     string
	d1, dp  string
	limit   ref
	target  string
	prec    int
	perCall bool // a count, not a measurement: no range
}

func (r *run) rows() []row {
	n := fmt.Sprintf("%dk", r.objects/1000)
	if r.objects%1000 != 0 {
		n = fmt.Sprint(r.objects)
	}
	sz := humanSize(r.size)
	small := fmt.Sprintf("%d × 128 KiB, %d readers, cold (MB/s)", r.small, r.readers)
	return []row{
		{label: "`ls -f` " + n + " flat, fresh mount (s)", key: "ls_f", d1: "list_1stream", dp: "list_parallel", limit: ref{"direct", "list_parallel"}, target: "≤ 1.2", prec: 2},
		{label: "`ls -l` " + n + " flat, fresh mount (s)", key: "ls_l", d1: "list_1stream", limit: ref{"builtin", "ls_f"}, target: "≤ 1.2 × our ls -f", prec: 2},
		{label: "HEAD requests during that `ls -l`", key: "ls_l_heads", target: "0", prec: 0, perCall: true},
		{label: "`ls -l` again, same mount (s)", key: "ls_l_again", prec: 2},
		{label: "bytes per cached entry (RSS after `ls -l` − idle)", key: "bytes_per_entry", target: "≤ 300 B", prec: 0},
		{label: "idle mount RSS (MiB)", key: "idle_rss", target: "≤ 25", prec: 1},
		{label: "sequential read " + sz + " (MB/s)", key: "seq_read", d1: "seq_read_1stream", dp: "seq_read_parallel", limit: ref{"direct", "seq_read_parallel"}, target: "≥ 0.8", prec: 0},
		{label: "  peak RSS of that read (MiB)", key: "seq_read_rss", target: "≤ 150", prec: 0},
		{label: small, key: "small_parallel", dp: "small_parallel", limit: ref{"direct", "small_parallel"}, target: "≥ 0.7", prec: 0},
		{label: fmt.Sprintf("random 4 KiB reads (ms each, %d)", r.randReads), key: "rand_4k", d1: "rand_4k_1stream", limit: ref{"direct", "rand_4k_1stream"}, target: "≤ 1.3", prec: 2},
		{label: "sequential write " + sz + " + close (MB/s)", key: "seq_write", dp: "seq_write_parallel", limit: ref{"direct", "seq_write_parallel"}, prec: 0},
		{label: "  peak RSS of that write (MiB)", key: "seq_write_rss", target: "≤ 150", prec: 0},
	}
}

func (r *run) cell(sys, key string, prec int, perCall bool) string {
	v, ok := r.samples[sys][key]
	if !ok {
		return "–"
	}
	s := summarize(v)
	if s.n == 0 {
		return fmt.Sprintf("timed out (> %v)", r.timeout)
	}
	f := func(x float64) string { return groupDigits(fmt.Sprintf("%.*f", prec, x)) }
	out := f(s.med)
	if !perCall && s.n > 1 && f(s.lo) != f(s.hi) {
		out += " (" + f(s.lo) + "–" + f(s.hi) + ")"
	} else if perCall && s.lo != s.hi {
		out += " (" + f(s.lo) + "–" + f(s.hi) + ")"
	}
	if s.timeouts > 0 {
		out += fmt.Sprintf(", %d timed out", s.timeouts)
	}
	return out
}

// groupDigits writes 12345.6 as 12,345.6.
func groupDigits(s string) string {
	intPart, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if neg {
		out = "-" + out
	}
	if frac != "" {
		out += "." + frac
	}
	return out
}

func median(v []float64) float64 {
	s := summarize(v)
	if s.n == 0 {
		return math.NaN()
	}
	return s.med
}

// gitDescribe names the checkout the bench runs in ("?" outside git).
func gitDescribe() string {
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	return "?"
}

// print writes the table (markdown): medians with the range of the rounds
// in brackets, the machine's load average, and the built-in mount's ratio
// to its limit in the same run.
func (r *run) print(w io.Writer) {
	commit := r.commit
	lat := "MinIO on loopback, no proxy"
	if r.latency > 0 {
		lat = fmt.Sprintf("MinIO behind Toxiproxy, +%v each way", r.latency)
	}
	fmt.Fprintf(w, "\n`bench %s` — %s UTC, commit %s; %s; %d rounds, systems alternating; median (min–max).\n",
		r.args, r.started.Format("2006-01-02 15:04"), commit, lat, r.rounds)
	fmt.Fprintf(w, "Load average (1/5/15 min) at the start: %s; after each round: %s.\n\n", r.loads[0], strings.Join(r.loads[1:], "; "))

	mountsOrder := r.only
	fmt.Fprintf(w, "| case | SDK one stream | SDK parallel |")
	for _, m := range mountsOrder {
		if why, ok := r.skipped[m]; ok {
			fmt.Fprintf(w, " %s (%s) |", m, why)
		} else {
			fmt.Fprintf(w, " %s |", m)
		}
	}
	fmt.Fprintf(w, " builtin ÷ limit | target |\n|---|---:|---:|")
	for range mountsOrder {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintf(w, "---:|---|\n")
	for _, row := range r.rows() {
		probe := row.key
		if probe == "ls_l_heads" {
			probe = "ls_l" // shown as n/a for mounts without Stats
		}
		_, any := r.anySample(probe)
		_, any1 := r.samples["direct"][row.d1]
		_, anyp := r.samples["direct"][row.dp]
		if !any && !any1 && !anyp {
			continue
		}
		d1, dp := "", ""
		if row.d1 != "" {
			d1 = r.cell("direct", row.d1, row.prec, false)
		}
		if row.dp != "" {
			dp = r.cell("direct", row.dp, row.prec, false)
		}
		fmt.Fprintf(w, "| %s | %s | %s |", row.label, d1, dp)
		for _, m := range mountsOrder {
			c := r.cell(m, row.key, row.prec, row.perCall)
			if _, skipped := r.skipped[m]; skipped {
				c = "skipped"
			} else if row.key == "ls_l_heads" && c == "–" {
				if _, ran := r.samples[m]["ls_l"]; ran {
					c = "n/a (no Stats)"
				}
			}
			fmt.Fprintf(w, " %s |", c)
		}
		ratio := ""
		if row.limit.sys != "" {
			b, l := median(r.samples["builtin"][row.key]), median(r.samples[row.limit.sys][row.limit.key])
			if !math.IsNaN(b) && !math.IsNaN(l) && l > 0 {
				ratio = fmt.Sprintf("%.2f", b/l)
			}
		}
		fmt.Fprintf(w, " %s | %s |\n", ratio, row.target)
	}
	if r.floor > 0 {
		fmt.Fprintf(w, "\nFloor: `ls -l` of %d empty files on tmpfs: %.2f s.\n", r.objects, r.floor)
	}
	if b, l := median(r.samples["builtin"]["ls_f"]), median(r.samples["direct"]["list_1stream"]); !math.IsNaN(b) && !math.IsNaN(l) {
		fmt.Fprintf(w, "builtin `ls -f` ÷ one ListObjectsV2 stream: %.2f (aim 0.31, at most 1).\n", b/l)
	}
}

func (r *run) anySample(key string) (string, bool) {
	for sys, m := range r.samples {
		if _, ok := m[key]; ok {
			return sys, true
		}
	}
	return "", false
}
