"""ember._cuda: the compiled CUDA kernels (private; built only where a CUDA toolkit was found).

Arrays are CuPy arrays (typed Any here: CuPy is optional). Outputs are allocated by the caller
(ember.ops) and written in place; every function launches on the CUDA stream whose handle is
`stream` (CuPy's current stream) and returns before the kernel finishes."""

from typing import Any

def device_count() -> int: ...
def runtime_version() -> int: ...
def driver_version() -> int: ...
def device_info(device: int = 0) -> dict: ...

# ---- GEMM (cuda/gemm) ---------------------------------------------------------------------------

def gemm(
    a: Any,
    b: Any,
    out: Any,
    trans_a: bool,
    trans_b: bool,
    alpha: float,
    beta: float,
    tf32: bool,
    stream: int,
) -> None:
    """out = alpha * op(a) @ op(b) + beta * out, float32, any strides; 2-D, or 3-D batches (a
    batch stride of 0 broadcasts). beta == 0 does not read out. tf32 allows tensor cores."""

def gemm_kernel(a: Any, b: Any, out: Any, trans_a: bool, trans_b: bool, tf32: bool) -> str:
    """The kernel, tile and operand layouts gemm would run for these arrays (nothing runs)."""

# ---- pooling (cuda/pool): x, dy (N, C, H|P, W|Q) any strides; outputs C-contiguous ---------------

def max_pool2d(
    x: Any,
    y: Any,
    indices: Any,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    stream: int,
) -> None:
    """y (float32) and indices (int64) of shape (N, C, P, Q) = window maxima and their flat
    indices h * W + w in each input plane."""

def max_pool2d_backward(dy: Any, indices: Any, dx: Any, bad: Any, stream: int) -> None:
    """dx (N, C, H, W), zeroed by the caller, += dy at indices (int64, dy's shape); bad (int32,
    shape (1,), zeroed) is set to 1 if an index lies outside [0, H * W) (it is skipped)."""

def avg_pool2d(
    x: Any,
    y: Any,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    count_include_pad: bool,
    divisor: int,
    stream: int,
) -> None:
    """y (N, C, P, Q) = window averages; divisor 0 means no divisor_override."""

def avg_pool2d_backward(
    dy: Any,
    dx: Any,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    count_include_pad: bool,
    divisor: int,
    stream: int,
) -> None:
    """dx (N, C, H, W) = gradient of avg_pool2d w.r.t. x (every element written)."""

def adaptive_avg_pool2d(x: Any, y: Any, stream: int) -> None:
    """y (N, C, P, Q) = adaptive average pooling of x to y's (P, Q)."""

def adaptive_avg_pool2d_backward(dy: Any, dx: Any, stream: int) -> None:
    """dx (N, C, H, W) = gradient of adaptive_avg_pool2d (every element written)."""

# ---- fused optimizer steps (cuda/optim): float32 CuPy arrays on one device, updated in place;
# the same formulas and rounding as ember._C.sgd_step / adam_step, enqueued on `stream`
def sgd_step(
    params: list,
    grads: list,
    momentum_buffers: list,
    init_buffers: list[bool],
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    stream: int,
    maximize: bool = False,
) -> None: ...
def adam_step(
    params: list,
    grads: list,
    exp_avgs: list,
    exp_avg_sqs: list,
    max_exp_avg_sqs: list,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    step_size: float,
    bias_correction2_sqrt: float,
    decoupled: bool,
    stream: int,
    maximize: bool = False,
) -> None: ...

# ---- convolution (cuda/conv): float32 CuPy arrays; outputs and workspaces come from the caller;
# padding is (top, bottom, left, right) for conv2d, (height, width) for im2col / col2im ----------

def im2col(
    x: object,
    cols: object,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    stream: int,
) -> None: ...
def col2im(
    cols: object,
    x: object,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    stream: int,
) -> None: ...
def conv2d_workspace(
    x: object,
    w: object,
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    groups: int,
    algorithm: str,
    tf32: bool,
) -> int: ...
def conv2d(
    x: object,
    w: object,
    b: object | None,
    y: object,
    workspace: object | None,
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    groups: int,
    algorithm: str,
    tf32: bool,
    stream: int,
) -> None: ...
def conv2d_backward_workspace(
    x: object,
    w: object,
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    groups: int,
    need: tuple[bool, bool, bool],
) -> int: ...
def conv2d_backward(
    dy: object,
    x: object,
    w: object,
    dx: object | None,
    dw: object | None,
    db: object | None,
    workspace: object | None,
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    groups: int,
    tf32: bool,
    stream: int,
) -> None: ...

# ---- LSTM (cuda/lstm): one layer, float32 CuPy arrays, every output allocated by the caller -----

def lstm_forward(
    x: object,
    h0: object | None,
    c0: object,
    w_ih: object,
    w_hh: object,
    bias: object | None,
    y: object,
    h_n: object,
    c_n: object,
    gates: object,
    c_all: object | None,
    tanh_c: object | None,
    h_prev: object | None,
    batch_major: bool,
    batch_first: bool,
    tf32: bool,
    stream: int,
) -> None: ...
def lstm_backward(
    dy: object | None,
    dh: object,
    dc: object,
    x: object,
    w_ih: object,
    w_hh: object,
    c0: object,
    gates: object,
    c_all: object,
    tanh_c: object,
    h_prev: object,
    dgates: object,
    dx: object,
    dw_ih: object,
    dw_hh: object,
    db: object | None,
    batch_major: bool,
    tf32: bool,
    stream: int,
) -> None: ...

# ---- attention (cuda/attention) ----
def sdpa_forward(
    q: object,
    k: object,
    v: object,
    attn_mask: object | None,
    out: object,
    lse: object,
    scale: float,
    is_causal: bool,
    dropout_p: float,
    seed: int,
    stream: int,
) -> None:
    """Fused attention on CuPy arrays (float32 or bfloat16; lse float32): writes out
    (..., L, Ev) and lse (..., L). q, k, v and attn_mask (bool or float32) share their leading
    dimensions (at most 4); the last dimension of q, k, v is contiguous; head dims up to 128."""

def sdpa_backward(
    dout: object,
    q: object,
    k: object,
    v: object,
    out: object,
    lse: object,
    attn_mask: object | None,
    delta: object,
    dq: object,
    dk: object,
    dv: object,
    scale: float,
    is_causal: bool,
    deterministic: bool,
    stream: int,
) -> None:
    """float32 gradients of sdpa_forward (no dropout): writes dq, dk, dv and the delta
    (..., L) workspace; dq with atomics, or in a pass of its own when deterministic."""

def sdpa_info(E: int, Ev: int) -> dict:
    """The head-dimension tile for head dims E, Ev (0 when above 128) and each kernel's dynamic
    shared memory per block in bytes."""
