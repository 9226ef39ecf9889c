"""`python -m bad_inputs ENTRY [--skip I,J,...]` (from tests/): runs one entry point's cases in
order, printing a JSON line as each starts and ends, so that a parent process can tell which
case a crash interrupted. `python -m bad_inputs --count` prints the number of cases per entry
point."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from bad_inputs import evaluate, table


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bad_inputs")
    parser.add_argument("entry", nargs="?")
    parser.add_argument("--skip", default="", help="comma-separated indices of cases not to run")
    parser.add_argument("--count", action="store_true")
    args = parser.parse_args()
    if args.count:
        total = 0
        for entry, make in table().items():
            n = len(make())
            total += n
            print(f"{entry:45s} {n:4d}")
        print(f"{'total':45s} {total:4d}")
        return
    skip = {int(i) for i in args.skip.split(",") if i}
    cases = table()[args.entry]()
    print(json.dumps({"cases": len(cases)}), flush=True)
    for i, case in enumerate(cases):
        if i in skip:
            continue
        print(json.dumps({"start": i, "name": case.name}), flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NaN/inf results are expected in some cases
            outcome, detail = evaluate(case)
        print(json.dumps({"end": i, "outcome": outcome, "detail": detail[:600]}), flush=True)
    sys.stdout.flush()


main()
