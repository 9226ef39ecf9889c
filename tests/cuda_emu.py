"""The attention kernels' CUDA source run on the CPU emulator of cuda/emu (no GPU needed).

build() compiles cuda/emu/attention_emu.cpp, cuda/attention/args.cpp and the kernels' .cu files
with g++ and EMBER_CUDA_EMULATION into a shared library, cached by the sources' hash;
forward() and backward() call it on NumPy arrays the way ember._cuda's bindings call the kernels
(same argument checks, same layouts). bf16 arrays are uint16 arrays of bf16 bits
(to_bf16 / from_bf16)."""

from __future__ import annotations

import ctypes
import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = [
    "cuda/emu/attention_emu.cpp",
    "cuda/attention/args.cpp",
    "cuda/attention/forward_f32.cu",
    "cuda/attention/forward_bf16.cu",
    "cuda/attention/backward_f32.cu",
    "cuda/attention/backward_bf16.cu",
]
HEADERS = [
    "cuda/emu/emu.h",
    "cuda/attention/attention.h",
    "cuda/attention/args.h",
    "cuda/attention/common.cuh",
    "cuda/attention/delta.cuh",
]
FLAGS = ["-std=c++17", "-O2", "-fPIC", "-shared", "-DEMBER_CUDA_EMULATION", "-Wall", "-Wextra"]
FLAGS += ["-Wno-unknown-pragmas"]  # the kernels' #pragma unroll

ORDERS = {"forward": 0, "reverse": 1, "random": 2, "warp_serial": 3, "warp_serial_reverse": 4}


class EmuArray(ctypes.Structure):
    _fields_ = [
        ("base", ctypes.c_void_p),
        ("base_bytes", ctypes.c_int64),
        ("offset", ctypes.c_int64),
        ("itemsize", ctypes.c_int64),
        ("ndim", ctypes.c_int64),
        ("shape", ctypes.c_int64 * 8),
        ("strides", ctypes.c_int64 * 8),
    ]


def compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++"))


def build() -> ctypes.CDLL:
    """The emulated kernels' library, compiled once per version of the sources."""
    digest = hashlib.sha256()
    for name in SOURCES + HEADERS:
        digest.update((ROOT / name).read_bytes())
    digest.update(" ".join(FLAGS).encode())
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache"))
    try:
        (cache / "ember-emu").mkdir(parents=True, exist_ok=True)
    except OSError:  # no writable home: a temporary directory's cache
        cache = pathlib.Path(tempfile.gettempdir())
        (cache / "ember-emu").mkdir(parents=True, exist_ok=True)
    lib = cache / "ember-emu" / f"attention-{digest.hexdigest()[:16]}.so"
    if not lib.exists():
        with tempfile.TemporaryDirectory() as tmp:
            out = pathlib.Path(tmp) / lib.name
            cmd = [compiler(), *FLAGS, f"-I{ROOT / 'cuda'}", "-o", str(out)]
            cmd += [str(ROOT / s) for s in SOURCES[:2]] + ["-x", "c++"]
            cmd += [str(ROOT / s) for s in SOURCES[2:]]
            subprocess.run(cmd, check=True, capture_output=True, text=True)
            os.replace(out, lib)
    dll = ctypes.CDLL(str(lib))
    arr = ctypes.POINTER(EmuArray)
    i, d, u32, u64 = ctypes.c_int, ctypes.c_double, ctypes.c_uint32, ctypes.c_uint64
    err = [ctypes.c_char_p, ctypes.c_int64]
    dll.emu_forward.argtypes = [i, arr, arr, arr, arr, i, arr, arr, d, i, d, u64, i, u32, *err]
    dll.emu_backward.argtypes = [i] + [arr] * 7 + [i] + [arr] * 4 + [d, i, i, i, u32, *err]
    dll.emu_forward.restype = dll.emu_backward.restype = ctypes.c_int
    return dll


def _array(x: np.ndarray | None):
    """x as an EmuArray: the buffer is the byte range its elements span."""
    if x is None:
        return None
    assert x.ndim <= 8 and x.dtype.itemsize in (1, 2, 4)
    start = x.ctypes.data
    lo = hi = 0
    for n, s in zip(x.shape, x.strides, strict=True):
        if n == 0:
            lo = hi = 0
            break
        reach = (n - 1) * s
        if reach < 0:
            lo += reach
        else:
            hi += reach
    a = EmuArray()
    a.base = start + lo
    a.base_bytes = max(hi - lo + x.dtype.itemsize, 1) if x.size else 1
    a.offset = -lo
    a.itemsize = x.dtype.itemsize
    a.ndim = x.ndim
    for d in range(x.ndim):
        a.shape[d] = x.shape[d]
        a.strides[d] = x.strides[d]
    return ctypes.pointer(a)


def _call(fn, *args):
    error = ctypes.create_string_buffer(1024)
    code = fn(*args, error, len(error))
    if code == 1:
        raise ValueError(error.value.decode())
    if code:
        raise RuntimeError(error.value.decode())


def forward(
    dll,
    q,
    k,
    v,
    mask=None,
    *,
    causal=False,
    scale=None,
    dropout_p=0.0,
    seed=0,
    out=None,
    lse=None,
    order="forward",
    schedule_seed=0,
):
    """(out, lse) of the emulated forward; q, k, v float32, or uint16 holding bf16 (out too)."""
    bf16 = q.dtype == np.uint16
    L, E, Ev = q.shape[-2], q.shape[-1], v.shape[-1]
    if out is None:
        out = np.full(q.shape[:-2] + (L, Ev), 0xFFFF if bf16 else np.nan, q.dtype)
    if lse is None:
        lse = np.full(q.shape[:-2] + (L,), np.nan, np.float32)
    scale = 1.0 / np.sqrt(E) if scale is None else scale
    is_bool = mask is not None and mask.dtype == np.bool_
    _call(
        dll.emu_forward,
        int(bf16),
        _array(q),
        _array(k),
        _array(v),
        _array(mask.view(np.uint8) if is_bool else mask),
        int(is_bool),
        _array(out),
        _array(lse),
        scale,
        int(causal),
        dropout_p,
        seed,
        ORDERS[order],
        schedule_seed,
    )
    return out, lse


def backward(
    dll,
    dout,
    q,
    k,
    v,
    out,
    lse,
    mask=None,
    *,
    causal=False,
    scale=None,
    deterministic=False,
    order="forward",
    schedule_seed=0,
    dq=None,
    dk=None,
    dv=None,
):
    """(dq, dk, dv, delta) of the emulated backward; outputs not given start as NaN. bf16 inputs
    (uint16) give bf16 dk, dv and a float32 dq (the kernels' accumulator)."""
    bf16 = q.dtype == np.uint16
    batch = q.shape[:-2]
    L, E, S, Ev = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    nan = 0xFFFF if bf16 else np.nan
    delta = np.full(batch + (L,), np.nan, np.float32)
    dq = np.full(batch + (L, E), np.nan, np.float32) if dq is None else dq
    dk = np.full(batch + (S, E), nan, q.dtype) if dk is None else dk
    dv = np.full(batch + (S, Ev), nan, q.dtype) if dv is None else dv
    scale = 1.0 / np.sqrt(E) if scale is None else scale
    is_bool = mask is not None and mask.dtype == np.bool_
    _call(
        dll.emu_backward,
        int(bf16),
        _array(dout),
        _array(q),
        _array(k),
        _array(v),
        _array(out),
        _array(lse),
        _array(mask.view(np.uint8) if is_bool else mask),
        int(is_bool),
        _array(delta),
        _array(dq),
        _array(dk),
        _array(dv),
        scale,
        int(causal),
        int(deterministic),
        ORDERS[order],
        schedule_seed,
    )
    return dq, dk, dv, delta


def to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bits (uint16), round to nearest even."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), r)


def from_bf16(h: np.ndarray) -> np.ndarray:
    return (np.asarray(h, np.uint16).astype(np.uint32) << 16).view(np.float32)


# ---- ember.ops on the emulator: a stand-in for CuPy and for ember._cuda -------------------------


class FakeDevice:
    id = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeCupyArray(np.ndarray):
    """A NumPy array that ember.ops takes for a CuPy array (its type's module is 'cupy...')."""

    __module__ = "cupy._emulated"

    @property
    def device(self):
        return FakeDevice()

    def get(self):
        return np.array(self)


def fake(x):
    """x (a NumPy array) as a FakeCupyArray: same memory, same strides."""
    return np.asarray(x).view(FakeCupyArray)


def fake_cupy():
    """A stand-in for the cupy module: NumPy's functions, their array results as
    FakeCupyArrays."""
    import types

    m = types.ModuleType("cupy")

    def wrap(fn):
        def call(*args, **kwargs):
            result = fn(*args, **kwargs)
            return fake(result) if isinstance(result, np.ndarray) else result

        return call

    def attribute(name):
        value = getattr(np, name)
        return wrap(value) if callable(value) and not isinstance(value, type) else value

    m.__getattr__ = attribute
    m.broadcast_to = lambda x, shape: np.broadcast_to(x, shape, subok=True)
    stream = types.SimpleNamespace(ptr=0)
    m.cuda = types.SimpleNamespace(get_current_stream=lambda: stream)
    return m


def _host(x):
    """A FakeCupyArray as the plain NumPy view the emulator takes (bf16 as its uint16 bits)."""
    if x is None:
        return None
    x = np.asarray(x)
    return x.view(np.uint16) if x.dtype.name == "bfloat16" else x


class FakeCudaModule:
    """ember._cuda's attention functions on the emulator, with the bindings' dtype checks."""

    def __init__(self, dll, order="forward"):
        self.dll, self.order = dll, order
        self.calls = []

    def sdpa_forward(self, q, k, v, attn_mask, out, lse, scale, is_causal, dropout_p, seed, stream):
        assert q.dtype.name in ("float32", "bfloat16") and lse.dtype.name == "float32"
        assert all(x.dtype == q.dtype for x in (k, v, out))
        assert attn_mask is None or attn_mask.dtype.name in ("bool", "float32")
        self.calls.append(("forward", q.shape, k.shape, v.shape))
        forward(
            self.dll,
            _host(q),
            _host(k),
            _host(v),
            _host(attn_mask),
            causal=is_causal,
            scale=scale,
            dropout_p=dropout_p,
            seed=seed,
            out=_host(out),
            lse=_host(lse),
            order=self.order,
        )

    def sdpa_backward(
        self, dout, q, k, v, out, lse, attn_mask, delta, dq, dk, dv, scale, is_causal,
        deterministic, stream,
    ):  # fmt: skip
        assert q.dtype.name in ("float32", "bfloat16")
        assert all(x.dtype == q.dtype for x in (dout, k, v, out, dk, dv))
        assert all(x.dtype.name == "float32" for x in (lse, delta, dq))
        self.calls.append(("backward", q.dtype.name, q.shape, k.shape, v.shape, deterministic))
        error = ctypes.create_string_buffer(1024)
        mask = _host(attn_mask)
        is_bool = mask is not None and mask.dtype == np.bool_
        code = self.dll.emu_backward(
            int(q.dtype.name == "bfloat16"),
            *(_array(_host(x)) for x in (dout, q, k, v, out, lse)),
            _array(mask.view(np.uint8) if is_bool else mask),
            int(is_bool),
            *(_array(_host(x)) for x in (delta, dq, dk, dv)),
            scale,
            int(is_causal),
            int(deterministic),
            ORDERS[self.order],
            0,
            error,
            len(error),
        )
        if code:
            raise (ValueError if code == 1 else RuntimeError)(error.value.decode())
