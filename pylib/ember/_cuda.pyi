"""ember._cuda: the compiled CUDA kernels (private; built only where a CUDA toolkit was found)."""

def device_count() -> int: ...
def runtime_version() -> int: ...
def driver_version() -> int: ...
def device_info(device: int = 0) -> dict: ...

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

