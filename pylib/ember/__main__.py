"""python -m ember info | demo"""

from __future__ import annotations

import argparse
import sys

import ember


def info() -> None:
    cpu = ember.cpu_info()
    features = " ".join(name for name, present in cpu["features"].items() if present)
    missing = " ".join(name for name, present in cpu["features"].items() if not present)
    blocking = ember._C.gemm_blocking()
    print(f"ember {ember.__version__}")
    print(f"cpu: {cpu['brand'] or 'unknown'} ({cpu['vendor'] or 'unknown vendor'})")
    print(f"features: {features or '-'}" + (f" (absent: {missing})" if missing else ""))
    print(
        f"isa: {cpu['isa']} (supported: {', '.join(cpu['supported_isas'])}; "
        "force with EMBER_CPU_ISA=generic|avx2|avx512)"
    )
    print(
        f"gemm kernel: {blocking['name']} (MR {blocking['mr']}, NR {blocking['nr']}, "
        f"MC {blocking['mc']}, KC {blocking['kc']}, NC {blocking['nc']})"
    )
    for family, name in cpu["kernels"].items():
        if family != "gemm":
            print(f"{family} kernels: {name}")
    print(f"threads: {ember.get_num_threads()} (ember.set_num_threads or OMP_NUM_THREADS)")
    cuda = ember.cuda_info()
    if not cuda["built"]:
        print("cuda: module not built (no CUDA toolkit at install time)")
        return
    runtime = cuda["runtime_version"]
    print(
        f"cuda: module built (runtime {runtime // 1000}.{runtime % 1000 // 10}), "
        f"{len(cuda['devices'])} device(s) visible"
    )
    for i, dev in enumerate(cuda["devices"]):
        major, minor = dev["compute_capability"]
        print(
            f"  device {i}: {dev['name']} (sm_{major}{minor}, {dev['multiprocessors']} SMs, "
            f"{dev['total_memory'] / 2**30:.0f} GiB)"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ember", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, CPU features, chosen kernels, threads, CUDA devices")
    demo = sub.add_parser("demo", help="train a small CNN on the bundled digits")
    demo.add_argument("--epochs", type=int, default=None, help="training epochs")
    args = parser.parse_args(argv)
    if args.command == "info":
        info()
    else:
        from ember.demo import run

        run(epochs=args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
