"""Draw docs/bench.png from the bench's results.json (internal/tools/bench
-json): each mount's median speed in each case relative to the direct SDK's
limit in the same run (higher is better), one bar per mount."""
import json
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# (case, direct SDK limit, label, higher_is_better)
CASES = [
    ("ls_f", "list_parallel", "ls -f, fresh", False),
    ("ls_l", "list_parallel", "ls -l, fresh", False),
    ("seq_read", "seq_read_parallel", "sequential read", True),
    ("small_parallel", "small_parallel", "small files, 16 readers", True),
    ("rand_4k", "rand_4k_1stream", "random 4 KiB", False),
    ("seq_write", "seq_write_parallel", "sequential write", True),
]


def med(samples):
    ok = [x for x in samples or [] if x >= 0]
    return statistics.median(ok) if ok else None


def main(src, dst):
    res = json.load(open(src))
    samples = res["samples"]
    direct = samples.get("direct", {})
    mounts = [m for m in ("builtin", "s3fs", "rclone", "geesefs") if m in samples]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / max(len(mounts), 1)
    for i, m in enumerate(mounts):
        xs, ys = [], []
        for j, (key, limit, _, higher) in enumerate(CASES):
            v, d = med(samples[m].get(key)), med(direct.get(limit))
            if v and d:
                xs.append(j + i * width)
                ys.append(v / d if higher else d / v)
        ax.bar(xs, ys, width, label="s3mounts built-in" if m == "builtin" else m)
        for x, y in zip(xs, ys):
            ax.text(x, y, f"{y:.2f}", ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yscale("log")
    ax.set_xticks([j + width * (len(mounts) - 1) / 2 for j in range(len(CASES))])
    ax.set_xticklabels([c[2] for c in CASES], rotation=20, fontsize=8)
    ax.set_ylabel("speed ÷ direct SDK (log; higher is better)")
    ax.set_title("bench " + res.get("args", ""))
    ax.legend()
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
