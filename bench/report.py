"""Turns a pytest-benchmark JSON file into the Markdown table of bench/RESULTS.md: GFLOP/s from
the median time, and each implementation's throughput relative to the peer in the same group.
Benchmarks without a flop count (a training epoch) get a table of median times instead."""

import json
import sys
from collections import defaultdict


def main(path: str, peer: str = "numpy") -> None:
    data = json.load(open(path))
    groups, times = defaultdict(dict), defaultdict(dict)
    for bench in data["benchmarks"]:
        info, median = bench["extra_info"], bench["stats"]["median"]
        if "flops" in info:
            groups[bench["group"]][info["impl"]] = info["flops"] / median / 1e9
        else:
            times[bench["group"]][info["impl"]] = median
    if groups:
        table(groups, peer, "GFLOP/s", "{:.1f}", f"ember / {peer}", lambda g: g["ember"] / g[peer])
    if times:
        ms = {name: {i: t * 1e3 for i, t in g.items()} for name, g in times.items()}
        # a speed ratio like the GFLOP/s table's: above 1 means ember is faster
        table(ms, peer, "ms", "{:.0f}", f"{peer} time / ember time", lambda g: g[peer] / g["ember"])
    m = data["machine_info"]
    e = m.get("ember", {})
    print(
        f"\nMachine: {e.get('brand') or m.get('cpu', {}).get('brand_raw')}, "
        f"{e.get('threads')} threads, "
        f"ember {e.get('version')} ({e.get('isa')}: {e.get('kernels')}), numpy {e.get('numpy')}, "
        f"{data['datetime'][:10]}"
    )


def table(groups, peer, unit, cell, ratio_name, ratio) -> None:
    """One Markdown table: a row per group, a column per implementation, then ratio(group)."""
    impls = sorted({impl for g in groups.values() for impl in g}, key=lambda i: i != "ember")
    print("| problem | " + " | ".join(f"{i} {unit}" for i in impls) + f" | {ratio_name} |")
    print("|---" * (len(impls) + 2) + "|")
    for name, g in groups.items():
        cells = [cell.format(g[i]) if i in g else "-" for i in impls]
        shown = f"{ratio(g):.2f}x" if "ember" in g and peer in g else "-"
        print(f"| {name} | " + " | ".join(cells) + f" | {shown} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
