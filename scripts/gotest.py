#!/usr/bin/env python3
"""Reads `go test -json` on stdin, prints failures' output and skip reasons,
and ends with a line CI reads: "N passed, N failed, N skipped".
Exit status 1 if anything failed (or a package failed to build)."""
import json, sys
from collections import defaultdict

out = defaultdict(list)
passed = failed = skipped = 0
failed_names, skips, build_fail = [], [], []
running = defaultdict(set)  # package -> tests started and not ended
for line in sys.stdin:
    line = line.rstrip("\n")
    try:
        ev = json.loads(line)
    except ValueError:
        print(line)  # build errors come as plain text
        if line.startswith("FAIL") or "build failed" in line or "[setup failed]" in line:
            build_fail.append(line)
        continue
    act, pkg, test = ev.get("Action"), ev.get("Package", ""), ev.get("Test")
    key = (pkg, test)
    if act == "run" and test:
        running[pkg].add(test)
    elif act in ("pass", "fail", "skip") and test:
        running[pkg].discard(test)
    if act == "output":
        out[key].append(ev.get("Output", ""))
        if ev.get("Output", "").startswith(("=== RUN", "--- ")) and test and "/" not in test:
            sys.stderr.write(ev["Output"])
    elif act == "pass" and test:
        passed += 1
    elif act == "fail" and test:
        failed += 1
        failed_names.append(f"{pkg} {test}")
        sys.stdout.write("".join(out[key]))
    elif act == "skip" and test:
        skipped += 1
        reason = [l.strip() for l in out[key]
                  if ("SKIP" in l or "skip" in l.lower()) and not l.lstrip().startswith("--- SKIP")]
        skips.append(f"{pkg} {test}: {reason[-1] if reason else ''}")
    elif act == "fail" and not test:
        if not any(n.startswith(pkg + " ") for n in failed_names):
            build_fail.append(pkg)
            sys.stdout.write("".join(out[(pkg, None)]))
        # A package that timed out: its panic and goroutine stacks are the
        # output of the tests still running, which never get an end event.
        for t in sorted(running.pop(pkg, ())):
            if "/" not in t:
                failed_names.append(f"{pkg} {t} (still running when the package failed)")
            sys.stdout.write("".join(out[(pkg, t)]))
    elif act in ("pass", "fail", "skip") and not test:
        sys.stderr.write(f"{act:5} {pkg} {ev.get('Elapsed', '')}\n")
if skips:
    print("\nSkipped tests (with reasons):")
    for s in skips:
        print("  " + s)
if failed_names or build_fail:
    print("\nFailed:")
    for n in failed_names + build_fail:
        print("  " + n)
print(f"\ngo: {passed} passed, {failed + len(build_fail)} failed, {skipped} skipped")
sys.exit(1 if failed or build_fail else 0)
