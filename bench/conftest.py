import time

import numpy as np
import pytest

import ember


def pytest_benchmark_update_machine_info(config, machine_info):
    cpu = ember.cpu_info()
    machine_info["ember"] = {
        "version": ember.__version__,
        "isa": cpu["isa"],
        "kernels": cpu["kernels"],
        "brand": cpu["brand"],
        "threads": ember.get_num_threads(),
        "numpy": np.__version__,
    }


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def quiet_machine():
    """Lets the previous benchmark's thread pool go idle first. OpenBLAS's threads keep spinning
    for a while after a call (and libgomp's briefly), taking a core from whoever runs next: this
    gives each library the machine to itself."""
    time.sleep(0.5)


def time_cuda(fn, *, samples: int, warmup: int = 3) -> list[float]:
    """Seconds per call of fn, each sample timed with CUDA events on CuPy's current stream after
    `warmup` untimed calls (which also absorb one-time costs: module loads, pool growth)."""
    import cupy

    for _ in range(warmup):
        fn()
    stream = cupy.cuda.get_current_stream()
    times = []
    for _ in range(samples):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record(stream)
        fn()
        stop.record(stream)
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return times


@pytest.fixture
def cuda_benchmark(benchmark):
    """Times a GPU callable with CUDA events (see time_cuda) and hands the samples to
    pytest-benchmark as its rounds, so its statistics (and bench/report.py) are device time, not
    host time. Skips when no GPU is visible. Use: cuda_benchmark(fn, flops=..., impl=...)."""
    if not ember.cuda_available():
        benchmark.skipped = True  # else pytest-benchmark warns that the fixture went unused
        pytest.skip("no CUDA GPU visible to ember._cuda")
    cupy = pytest.importorskip("cupy")

    def run(fn, *, samples: int = 30, **extra_info):
        times = iter(time_cuda(fn, samples=samples))
        benchmark.extra_info.update(device=cupy.cuda.runtime.getDeviceProperties(0)["name"])
        benchmark.extra_info.update(extra_info)
        # each round replays one recorded device time on a clock that pytest-benchmark reads
        clock = [0.0]

        def replay():
            clock[0] += next(times)

        def cuda_event_clock():
            return clock[0]

        benchmark._timer = cuda_event_clock
        benchmark.pedantic(replay, rounds=samples, iterations=1, warmup_rounds=0)

    return run
