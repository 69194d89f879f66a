"""Draw docs/bench.png from the bench's results.json: time of each case
relative to the direct SDK (lower is better), one bar per mount."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CASES = [
    ("seq_read", "seq read 1 GiB"),
    ("rand_4k", "300 random 4 KiB"),
    ("ls_f_first", "ls -f 100k, 1st"),
    ("ls_l_first", "ls -l 100k, 1st"),
    ("ls_l_second", "ls -l 100k, 2nd"),
    ("cat_1000_small", "cat 1000 small"),
    ("find_tree_10k", "find 10k tree"),
    ("seq_write", "write 1 GiB"),
]


def main(src, dst):
    res = json.load(open(src))
    direct = res["direct"]
    mounts = [m for m in ("builtin", "s3fs", "geesefs") if m in res]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / max(len(mounts), 1)
    for i, m in enumerate(mounts):
        xs, ys = [], []
        for j, (key, _) in enumerate(CASES):
            if key in res[m] and direct.get(key):
                xs.append(j + i * width)
                ys.append(res[m][key] / direct[key])
        bars = ax.bar(xs, ys, width, label="s3mounts built-in" if m == "builtin" else m)
        for x, y in zip(xs, ys):
            ax.text(x, y, f"{y:.2f}", ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yscale("log")
    ax.set_xticks([j + width * (len(mounts) - 1) / 2 for j in range(len(CASES))])
    ax.set_xticklabels([label for _, label in CASES], rotation=20, fontsize=8)
    ax.set_ylabel("time ÷ direct SDK (log; lower is better)")
    ax.set_title("s3mounts built-in vs s3fs on local MinIO (2 cores)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
