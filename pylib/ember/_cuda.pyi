"""ember._cuda: the compiled CUDA kernels (private; built only where a CUDA toolkit was found)."""

def device_count() -> int: ...
def runtime_version() -> int: ...
def driver_version() -> int: ...
def device_info(device: int = 0) -> dict: ...

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
