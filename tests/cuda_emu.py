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
import re
import shutil
import subprocess
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = [
    "cuda/emu/attention_emu.cpp",
    "cuda/emu/switch.cpp",
    "cuda/attention/args.cpp",
    "cuda/attention/forward_f32.cu",
    "cuda/attention/forward_bf16.cu",
    "cuda/attention/backward_f32.cu",
    "cuda/attention/backward_bf16.cu",
]
HEADERS = [
    "cuda/emu/emu.h",
    "cuda/emu/include/cuda_runtime.h",
    "cuda/attention/attention.h",
    "cuda/attention/args.h",
    "cuda/attention/common.cuh",
    "cuda/attention/delta.cuh",
]
FLAGS = ["-std=c++17", "-O2", "-fPIC", "-shared", "-DEMBER_CUDA_EMULATION", "-Wall", "-Wextra"]
FLAGS += ["-Wno-unknown-pragmas"]  # the kernels' #pragma unroll
FLAGS += ["-ffp-contract=off"]  # no FMA the source does not ask for (x86-64 g++ default anyway)

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


def _kernel_start(src: str, end: int) -> int:
    """Where the kernel expression ending at src[end] (a name, maybe qualified, maybe with
    template arguments) starts."""
    i = end
    while src[i].isspace():
        i -= 1
    if src[i] == ">":
        depth = 0
        while True:
            depth += {">": 1, "<": -1}.get(src[i], 0)
            if depth == 0:
                break
            i -= 1
        i -= 1
    while i >= 0 and (src[i].isalnum() or src[i] in "_:"):
        i -= 1
    return i + 1


def _split_top(text: str) -> list[str]:
    """text split at the commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch in "([{") - (ch in ")]}")
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*parts, cur.strip()]


def rewrite(src: str) -> str:
    """CUDA source as the emulator compiles it: kernel<<<grid, block, shared, stream>>>(args) is
    emu::launch_kernel(grid, block, shared, stream, kernel, args), and an extern __shared__ array
    the block's dynamic shared memory."""
    src = re.sub(
        r"extern __shared__ (?:__align__\(\d+\) )?(\w+) (\w+)\[\];",
        r"\1* \2 = reinterpret_cast<\1*>(::emu::shared_memory());",
        src,
    )
    while (open_at := src.find("<<<")) >= 0:
        close_at = src.index(">>>", open_at)
        config = _split_top(src[open_at + 3 : close_at])
        config += ["0", "nullptr"][len(config) - 2 :]  # the defaults of shared and stream
        start = _kernel_start(src, open_at - 1)
        kernel = src[start:open_at].strip()
        paren = close_at + 3
        assert src[paren] == "(", "a launch's arguments must follow >>> directly"
        call = f"::emu::launch_kernel(dim3({config[0]}), dim3({config[1]}), size_t({config[2]}), "
        call += f"{config[3]}, "
        src = src[:start] + call + kernel + ", " + src[paren + 1 :]
    return src


def compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++"))


def _cache_dir() -> pathlib.Path:
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache"))
    try:
        (cache / "ember-emu").mkdir(parents=True, exist_ok=True)
    except OSError:  # no writable home: a temporary directory's cache
        cache = pathlib.Path(tempfile.gettempdir())
        (cache / "ember-emu").mkdir(parents=True, exist_ok=True)
    return cache / "ember-emu"


def build_library(name: str, sources: list[str], headers: list[str]) -> pathlib.Path:
    """sources (paths under the repository; .cu files through rewrite()) compiled with g++ and
    EMBER_CUDA_EMULATION into a shared library, once per version of the sources and headers."""
    texts = {s: (ROOT / s).read_text() for s in sources}
    texts = {s: rewrite(t) if s.endswith(".cu") else t for s, t in texts.items()}
    digest = hashlib.sha256()
    for s in sources:
        digest.update(texts[s].encode())
    for h in headers:
        digest.update((ROOT / h).read_bytes())
    digest.update(" ".join(FLAGS).encode())
    lib = _cache_dir() / f"{name}-{digest.hexdigest()[:16]}.so"
    if not lib.exists():
        with tempfile.TemporaryDirectory() as tmp:
            include = [f"-I{ROOT / 'cuda/emu/include'}", f"-I{ROOT / 'cuda'}"]
            jobs, objects = [], []
            for i, (s, text) in enumerate(texts.items()):  # compiled in parallel, then linked
                source = ROOT / s
                if s.endswith(".cu"):
                    source = pathlib.Path(tmp) / (s.replace("/", "_") + ".cpp")
                    source.write_text(text)
                objects.append(str(pathlib.Path(tmp) / f"{i}.o"))
                cmd = [compiler(), *FLAGS, *include, "-c", str(source), "-o", objects[-1]]
                jobs.append((cmd, subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)))
            for cmd, job in jobs:
                _, err = job.communicate()
                if job.returncode:
                    raise RuntimeError(f"emulator build failed: {' '.join(cmd)}\n{err}")
            out = pathlib.Path(tmp) / lib.name
            subprocess.run([compiler(), *FLAGS, *objects, "-o", str(out)], check=True)
            os.replace(out, lib)
    return lib


def build() -> ctypes.CDLL:
    """The emulated attention kernels' library."""
    dll = ctypes.CDLL(str(build_library("attention", SOURCES, HEADERS)))
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
    assert x.ndim <= 8 and x.dtype.itemsize in (1, 2, 4, 8)
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


# ---- the other kernel families: GEMM, pooling, convolution, optimizers, LSTM -------------------
#
# One library (cuda/emu/*_emu.cpp entry points, the families' .cu files rewritten); the test files
# share the cached build.

KERNEL_SOURCES = [
    "cuda/emu/switch.cpp",
    "cuda/emu/gemm_emu.cpp",
    "cuda/emu/pool_emu.cpp",
    "cuda/emu/conv_emu.cpp",
    "cuda/emu/optim_emu.cpp",
    "cuda/emu/lstm_emu.cpp",
    "cuda/gemm/gemm.cu",
    "cuda/gemm/sgemm_simt.cu",
    "cuda/gemm/sgemm_tf32.cu",
    "cuda/gemm/sgemm_strided.cu",
    "cuda/pool/pool.cu",
    "cuda/conv/conv.cu",
    "cuda/optim/optim.cu",
    "cuda/lstm/lstm.cu",
]
KERNEL_HEADERS = [
    "cuda/emu/emu.h",
    "cuda/emu/array.h",
    "cuda/emu/include/cuda_runtime.h",
    "cuda/common/check.h",
    "cuda/common/graph.h",
    "cuda/gemm/gemm.h",
    "cuda/gemm/kernels.h",
    "cuda/gemm/tile.cuh",
    "cuda/pool/pool.h",
    "cuda/conv/conv.h",
    "cuda/optim/optim.h",
    "cuda/lstm/lstm.h",
]


def build_kernels() -> ctypes.CDLL:
    """The emulated GEMM, pooling, convolution, optimizer and LSTM library (emu_sgemm, emu_pool,
    emu_conv2d, emu_conv2d_backward, emu_sgd_step, emu_adam_step, emu_lstm_forward,
    emu_lstm_backward)."""
    dll = ctypes.CDLL(str(build_library("kernels", KERNEL_SOURCES, KERNEL_HEADERS)))
    i64, i32, u32, p = ctypes.c_int64, ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p
    i64p, arr, err = ctypes.POINTER(i64), ctypes.POINTER(EmuArray), [ctypes.c_char_p, i64]
    operand = [p, i64, i64, i64p]
    dll.emu_sgemm.argtypes = [i64] * 4 + operand * 3 + [ctypes.c_float] * 2 + [i32] * 3
    dll.emu_sgemm.argtypes += [u32, i64, ctypes.c_char_p, i64, *err]
    dll.emu_pool.argtypes = [i32, i64p, i32, i64, *[arr] * 4, i32, u32, *err]
    dll.emu_conv2d.argtypes = [i64p, *[arr] * 4, i32, i64, i32, i32, i32, u32]
    dll.emu_conv2d.argtypes += [ctypes.POINTER(i32), *err]
    dll.emu_conv2d_backward.argtypes = [i64p, *[arr] * 6, i64, i32, i32, i32, u32, *err]
    arrays = ctypes.POINTER(arr)
    dll.emu_sgd_step.argtypes = [ctypes.POINTER(ctypes.c_double), i32, i32, i32, *[arrays] * 3]
    dll.emu_sgd_step.argtypes += [ctypes.POINTER(ctypes.c_uint8), i32, u32, *err]
    dll.emu_adam_step.argtypes = [ctypes.POINTER(ctypes.c_double), i32, i32, i32, *[arrays] * 5]
    dll.emu_adam_step.argtypes += [i32, u32, *err]
    dll.emu_lstm_forward.argtypes = [i64p, i32, *[arr] * 13, i32, i32, i32, u32, *err]
    dll.emu_lstm_backward.argtypes = [i64p, i32, *[arr] * 16, i32, i32, i32, u32, *err]
    for name in ("sgemm", "pool", "conv2d", "conv2d_backward", "sgd_step", "adam_step"):
        getattr(dll, f"emu_{name}").restype = ctypes.c_int
    dll.emu_lstm_forward.restype = dll.emu_lstm_backward.restype = ctypes.c_int
    return dll


def _operand(x: np.ndarray):
    """(base, bytes, offset, strides in elements (row, col, batch)) of a 3-d float32 array."""
    a = _array(x).contents
    strides = (ctypes.c_int64 * 3)(*(s // 4 for s in (x.strides[1], x.strides[2], x.strides[0])))
    return [a.base, a.base_bytes, a.offset, strides]


def sgemm(
    dll,
    a,
    b,
    c,
    *,
    alpha=1.0,
    beta=0.0,
    tf32=False,
    multiprocessors=132,
    order="forward",
    schedule_seed=0,
    shift=0,
):
    """c[i] = alpha a[i] @ b[i] + beta c[i] (in place) on the emulated kernels, for 3-d float32
    arrays of any strides (c's elements distinct); returns the name of the kernel gemm.cu picked.
    multiprocessors steers the tile choice; shift (bytes) moves the operands off 16-byte
    alignment."""
    assert a.dtype == b.dtype == c.dtype == np.float32 and a.ndim == b.ndim == c.ndim == 3
    batch, m, k = a.shape
    n = b.shape[2]
    name = ctypes.create_string_buffer(256)
    _call(
        dll.emu_sgemm,
        m,
        n,
        k,
        batch,
        *_operand(a),
        *_operand(b),
        *_operand(c),
        alpha,
        beta,
        int(tf32),
        multiprocessors,
        ORDERS[order],
        schedule_seed,
        shift,
        name,
        len(name),
    )
    return name.value.decode()


POOL_OPS = ["max", "max_backward", "avg", "avg_backward", "adaptive", "adaptive_backward"]


def pool(
    dll,
    op,
    x,
    out,
    window,
    *,
    aux=None,
    bad=None,
    count_include_pad=True,
    divisor=0,
    order="forward",
    schedule_seed=0,
):
    """pool.cu's launcher `op` (POOL_OPS) on x (or dy) into out (y or dx, contiguous, in place);
    window = (H, W, P, Q, kh, kw, sh, sw, ph, pw, dh, dw) as the bindings build it; aux the
    int64 indices of max pooling, bad its backward's int32 flag."""
    w = (ctypes.c_int64 * 12)(*window)
    _call(
        dll.emu_pool,
        POOL_OPS.index(op),
        w,
        int(count_include_pad),
        divisor,
        _array(x),
        _array(out),
        _array(aux),
        _array(bad),
        ORDERS[order],
        schedule_seed,
    )


def conv2d(
    dll,
    x,
    w,
    b,
    y,
    *,
    stride=(1, 1),
    padding=(0, 0, 0, 0),
    dilation=(1, 1),
    groups=1,
    algo="auto",
    workspace_images=1,
    tf32=False,
    multiprocessors=132,
    order="forward",
    schedule_seed=0,
):
    """y = conv2d(x, w) + b in place on the emulated kernels (padding top, bottom, left, right;
    algo "im2col", "implicit" or "auto"; a workspace of workspace_images images); returns the
    algorithm that ran."""
    ran = ctypes.c_int(-1)
    _call(
        dll.emu_conv2d,
        _geometry(x.shape, w.shape, stride, padding, dilation, groups),
        _array(x),
        _array(w),
        _array(b),
        _array(y),
        ["im2col", "implicit", "auto"].index(algo),
        workspace_images,
        int(tf32),
        multiprocessors,
        ORDERS[order],
        schedule_seed,
        ctypes.byref(ran),
    )
    return ["im2col", "implicit"][ran.value]


def conv2d_backward(
    dll,
    dy,
    x,
    w,
    dx=None,
    dw=None,
    db=None,
    *,
    stride=(1, 1),
    padding=(0, 0, 0, 0),
    dilation=(1, 1),
    groups=1,
    workspace_images=1,
    tf32=False,
    multiprocessors=132,
    order="forward",
    schedule_seed=0,
):
    """dx, dw, db (those given, in place) of conv2d on the emulated kernels."""
    _call(
        dll.emu_conv2d_backward,
        _geometry(x.shape, w.shape, stride, padding, dilation, groups),
        *(_array(a) for a in (dy, x, w, dx, dw, db)),
        workspace_images,
        int(tf32),
        multiprocessors,
        ORDERS[order],
        schedule_seed,
    )


def _geometry(x_shape, w_shape, stride, padding, dilation, groups):
    values = [*x_shape, w_shape[0], w_shape[2], w_shape[3], *stride, *padding, *dilation, groups]
    return (ctypes.c_int64 * 16)(*values)


def _arrays(xs):
    """A C array of EmuArray pointers (None for None)."""
    if xs is None:
        return None
    pointers = [_array(x) for x in xs]
    return (ctypes.POINTER(EmuArray) * max(len(pointers), 1))(*pointers)


def sgd_step(
    dll, params, grads, momentum_buffers, init_buffers, *, lr, momentum, dampening,
    weight_decay, nesterov, maximize=False, order="forward", schedule_seed=0,
):  # fmt: skip
    """ember._C.sgd_step's contract (in place) on the emulated CUDA kernel."""
    scalars = (ctypes.c_double * 4)(lr, momentum, dampening, weight_decay)
    bufs = momentum_buffers if momentum != 0.0 else None
    init = (ctypes.c_uint8 * max(len(params), 1))(*[int(b) for b in init_buffers])
    _call(
        dll.emu_sgd_step,
        scalars,
        int(nesterov),
        int(maximize),
        len(params),
        _arrays(params),
        _arrays(grads),
        _arrays(bufs),
        init,
        ORDERS[order],
        schedule_seed,
    )


def adam_step(
    dll, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, lr, beta1, beta2, eps,
    weight_decay, step_size, bias_correction2_sqrt, decoupled, maximize=False, order="forward",
    schedule_seed=0,
):  # fmt: skip
    """ember._C.adam_step's contract (in place) on the emulated CUDA kernel."""
    values = (lr, beta1, beta2, eps, weight_decay, step_size, bias_correction2_sqrt)
    _call(
        dll.emu_adam_step,
        (ctypes.c_double * 7)(*values),
        int(decoupled),
        int(maximize),
        len(params),
        _arrays(params),
        _arrays(grads),
        _arrays(exp_avgs),
        _arrays(exp_avg_sqs),
        _arrays(max_exp_avg_sqs or None),
        ORDERS[order],
        schedule_seed,
    )


def lstm_forward(
    dll, x, w_ih, w_hh, bias, h0, c0, *, batch_major=False, tf32=False, graph=False,
    order="forward",
):  # fmt: skip
    """One LSTM layer on the emulated kernels, saving what the backward needs: a dict of gates,
    y, h_n, c_n, c_all, tanh_c, h_prev (outputs start as NaN). x (T, B, I), or (B, T, I) when
    batch_major, contiguous; bias (4H) or None; h0 (B, H) or None; c0 (B, H). graph: the layer
    replayed as a CUDA graph after a decoy call on negated inputs (cuda/emu/lstm_emu.cpp)."""
    lead = x.shape[:2]
    H = w_hh.shape[1]
    T, B = (lead[1], lead[0]) if batch_major else lead
    rows = lead + (H,)
    out = {"gates": np.full(lead + (4 * H,), np.nan, np.float32)}
    for name, shape in [("y", rows), ("h_n", (B, H)), ("c_n", (B, H)), ("c_all", rows)]:
        out[name] = np.full(shape, np.nan, np.float32)
    out["tanh_c"] = np.full(rows, np.nan, np.float32)
    out["h_prev"] = np.full(rows, np.nan, np.float32)
    names = ["gates", "y", "h_n", "c_n", "c_all", "tanh_c", "h_prev"]
    _call(
        dll.emu_lstm_forward,
        (ctypes.c_int64 * 4)(T, B, x.shape[2], H),
        int(batch_major),
        *(_array(a) for a in (x, w_ih, w_hh, bias, h0, c0)),
        *(_array(out[n]) for n in names),
        int(tf32),
        int(graph),
        ORDERS[order],
        0,
    )
    return out


def lstm_backward(
    dll, x, w_ih, w_hh, c0, saved, dy, dh, dc, *, bias=True, batch_major=False, tf32=False,
    graph=False, order="forward",
):  # fmt: skip
    """(dx, dw_ih, dw_hh, db, dh0, dc0) of the layer lstm_forward ran (saved), given dy (the
    layer's order, or None), dh = dL/dh_T and dc = dL/dc_T; graph as for lstm_forward."""
    lead = x.shape[:2]
    H = w_hh.shape[1]
    T, B = (lead[1], lead[0]) if batch_major else lead
    dh, dc = dh.copy(), dc.copy()
    dgates = np.full(saved["gates"].shape, np.nan, np.float32)
    dx = np.full(x.shape, np.nan, np.float32)
    dw_ih = np.full(w_ih.shape, np.nan, np.float32)
    dw_hh = np.full(w_hh.shape, np.nan, np.float32)
    db = np.full(4 * H, np.nan, np.float32) if bias else None
    _call(
        dll.emu_lstm_backward,
        (ctypes.c_int64 * 4)(T, B, x.shape[2], H),
        int(batch_major),
        *(_array(a) for a in (x, w_ih, w_hh, c0)),
        *(_array(saved[n]) for n in ("gates", "c_all", "tanh_c", "h_prev")),
        *(_array(a) for a in (dy, dh, dc, dgates, dx, dw_ih, dw_hh, db)),
        int(tf32),
        int(graph),
        ORDERS[order],
        0,
    )
    return dx, dw_ih, dw_hh, db, dh, dc
