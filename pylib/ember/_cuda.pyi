"""ember._cuda: the compiled CUDA kernels (private; built only where a CUDA toolkit was found)."""

def device_count() -> int: ...
def runtime_version() -> int: ...
def driver_version() -> int: ...
def device_info(device: int = 0) -> dict: ...

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
