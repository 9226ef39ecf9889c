"""ISA dispatch, threads, `python -m ember info`, and the optional CUDA module."""

import os
import subprocess
import sys

import numpy as np
import pytest

import ember
from conftest import randn


def run_python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_cpu_info_reports_features_and_choice():
    info = ember.cpu_info()
    assert set(info["features"]) >= {
        "sse2",
        "avx2",
        "fma",
        "avx512f",
        "avx512bw",
        "avx512dq",
        "avx512vl",
    }
    assert "generic" in info["supported_isas"]
    assert info["isa"] in info["supported_isas"]
    assert info["kernels"]["gemm"].startswith("f32_gemm_") and info["kernels"]["gemm"].endswith(
        info["isa"]
    )
    assert info["num_threads"] == ember.get_num_threads()


def test_default_isa_is_the_best_supported():
    out = run_python(
        "import ember; i = ember.cpu_info(); print(i['isa'], i['supported_isas'][-1])",
        EMBER_CPU_ISA="",
    )
    assert out.returncode == 0, out.stderr
    chosen, best = out.stdout.split()
    assert chosen == best


@pytest.mark.parametrize("name", ["generic", "avx2", "avx512"])
def test_env_forces_isa(name):
    code = (
        "import numpy as np, ember; i = ember.cpu_info(); a = np.ones((50, 70), np.float32);"
        "print(i['isa'], i['kernels']['gemm'], float(ember.ops.gemm(a, a.T)[0, 0]))"
    )
    out = run_python(code, EMBER_CPU_ISA=name)
    if name in ember.cpu_info()["supported_isas"]:
        assert out.returncode == 0, out.stderr
        isa, kernel, value = out.stdout.split()
        assert isa == name and kernel.endswith(name) and float(value) == 70.0
    else:
        assert out.returncode != 0
        assert f"does not support the '{name}' kernels" in out.stderr


def test_env_rejects_unknown_isa():
    out = run_python("import ember", EMBER_CPU_ISA="sse9")
    assert out.returncode != 0 and "must be one of generic, avx2, avx512" in out.stderr


def test_set_num_threads():
    before = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        assert ember.get_num_threads() == 1 == ember.cpu_info()["num_threads"]
    finally:
        ember.set_num_threads(before)
    with pytest.raises(ValueError, match=">= 1"):
        ember.set_num_threads(0)
    with pytest.raises(TypeError):
        ember.set_num_threads(2.0)


def test_omp_num_threads_sets_the_default():
    out = run_python("import ember; print(ember.get_num_threads())", OMP_NUM_THREADS="3")
    assert out.returncode == 0 and out.stdout.strip() == "3"


def test_matmul_precision_setting():
    assert ember.get_float32_matmul_precision() == "highest"
    ember.set_float32_matmul_precision("high")
    assert ember.ops.get_float32_matmul_precision() == "high"
    ember.ops.set_float32_matmul_precision("highest")
    with pytest.raises(ValueError, match="precision"):
        ember.set_float32_matmul_precision("medium-ish")


def test_info_command():
    out = subprocess.run(
        [sys.executable, "-m", "ember", "info"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    for word in (
        "ember " + ember.__version__,
        "isa:",
        "gemm kernel: f32_gemm_",
        "threads:",
        "cuda:",
    ):
        assert word in out.stdout


def test_cuda_info_without_a_gpu_does_not_fail():
    info = ember.cuda_info()
    assert isinstance(info["built"], bool)
    assert ember.cuda_available() == (info["built"] and len(info["devices"]) > 0)


def test_cupy_arrays_get_a_clear_error():
    cupy = pytest.importorskip("cupy")
    if ember.cuda_available():
        pytest.skip("CUDA GEMM dispatch is tested in the CUDA suite")
    with pytest.raises((NotImplementedError, TypeError)):
        ember.ops.gemm(cupy.ones((2, 2), np.float32), cupy.ones((2, 2), np.float32))


@pytest.mark.cuda
def test_cuda_device_is_described():
    dev = ember.cuda_info()["devices"][0]
    assert dev["name"] and dev["compute_capability"] >= (8, 0) and dev["total_memory"] > 0


def test_fork_after_threaded_kernels_does_not_hang():
    code = (
        "import os, numpy as np, ember\n"
        "a = np.ones((512, 512), np.float32)\n"
        "ember.ops.gemm(a, a)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    ok = ember.ops.gemm(a, a)[0, 0] == 512 and ember.get_num_threads() == 1\n"
        "    os._exit(0 if ok else 3)\n"
        "print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), ember.get_num_threads())\n"
    )
    out = run_python(code, OMP_NUM_THREADS="2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "2"]


def test_threads_calling_at_once_agree_with_serial(rng):
    from concurrent.futures import ThreadPoolExecutor

    pairs = [(randn(rng, 150 + i, 97), randn(rng, 97, 130 - i)) for i in range(16)]
    serial = [ember.ops.gemm(a, b) for a, b in pairs]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda ab: ember.ops.gemm(*ab), pairs))
    for s, p in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(s, p)
