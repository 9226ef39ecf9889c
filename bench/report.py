"""Turns a pytest-benchmark JSON file into the Markdown table of bench/RESULTS.md: GFLOP/s from
the median time, and each implementation's throughput relative to the peer in the same group."""

import json
import sys
from collections import defaultdict


def main(path: str, peer: str = "numpy") -> None:
    data = json.load(open(path))
    groups = defaultdict(dict)
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        groups[bench["group"]][info["impl"]] = info["flops"] / bench["stats"]["median"] / 1e9
    impls = sorted({impl for g in groups.values() for impl in g}, key=lambda i: i != "ember")
    print("| problem | " + " | ".join(f"{i} GFLOP/s" for i in impls) + f" | ember / {peer} |")
    print("|---" * (len(impls) + 2) + "|")
    for name, g in groups.items():
        cells = [f"{g[i]:.1f}" if i in g else "-" for i in impls]
        ratio = f"{g['ember'] / g[peer]:.2f}x" if "ember" in g and peer in g else "-"
        print(f"| {name} | " + " | ".join(cells) + f" | {ratio} |")
    m = data["machine_info"]
    e = m.get("ember", {})
    print(
        f"\nMachine: {e.get('brand') or m.get('cpu', {}).get('brand_raw')}, "
        f"{e.get('threads')} threads, "
        f"ember {e.get('version')} ({e.get('isa')}: {e.get('kernels')}), numpy {e.get('numpy')}, "
        f"{data['datetime'][:10]}"
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
