"""One Adam step over the parameters of a ~1M-parameter MLP (784-1024-256-10): ember's fused C++
step, ember's NumPy path (one expression chain per parameter) and torch.optim.Adam(foreach=True)
in the same run, same threads.

python -m pytest bench/bench_optim.py --benchmark-json=bench/optim.json
python bench/report.py bench/optim.json
"""

import numpy as np
import pytest

import ember
from ember import optim

LAYERS = [784, 1024, 256, 10]
KWARGS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4)


def mlp_arrays(rng):
    """Weights (out, in) and biases of each layer, and a gradient for each."""
    shapes = []
    for fan_in, fan_out in zip(LAYERS[:-1], LAYERS[1:], strict=True):
        shapes += [(fan_out, fan_in), (fan_out,)]
    params = [rng.standard_normal(s, dtype=np.float32) * 0.05 for s in shapes]
    grads = [rng.standard_normal(s, dtype=np.float32) * 1e-2 for s in shapes]
    return params, grads


def ember_step(params, grads):
    tensors = [ember.tensor(p.copy(), requires_grad=True) for p in params]
    for t, g in zip(tensors, grads, strict=True):
        t.grad = ember.tensor(g)
    opt = optim.Adam(tensors, **KWARGS)
    return opt.step, lambda: [t.numpy() for t in tensors]


def torch_step(torch, params, grads):
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    for t, g in zip(tensors, grads, strict=True):
        t.grad = torch.tensor(g)
    opt = torch.optim.Adam(tensors, foreach=True, **KWARGS)
    return opt.step, lambda: [t.detach().numpy() for t in tensors]


@pytest.mark.parametrize("impl", ["ember", "numpy", "torch"])
def bench_adam_step_mlp(benchmark, rng, monkeypatch, impl):
    params, grads = mlp_arrays(rng)
    count = sum(p.size for p in params)
    if impl == "torch":
        torch = pytest.importorskip("torch")
        torch.set_num_threads(ember.get_num_threads())
        step, values = torch_step(torch, params, grads)
    else:
        if impl == "numpy":
            monkeypatch.setattr(optim.optimizer, "_fusable", lambda params: False)
        step, values = ember_step(params, grads)
    # validate before timing: three steps against the NumPy path in float64
    with monkeypatch.context() as m:
        m.setattr(optim.optimizer, "_fusable", lambda params: False)
        ref_step, ref_values = ember_step([p.astype(np.float64) for p in params], grads)
        for _ in range(3):
            ref_step()
    for _ in range(3):
        step()
    for got, want in zip(values(), ref_values(), strict=True):
        err = np.linalg.norm(got - want) / np.linalg.norm(want)
        assert err < 1e-5, f"refusing to time a wrong step: {err}"
    benchmark.group = f"adam step, {len(params)} tensors, {count} parameters"
    # flops for report.py: 15 per element (weight decay 2, moments 7, update 6)
    benchmark.extra_info.update(
        flops=15.0 * count, impl=impl, params=count, threads=ember.get_num_threads()
    )
    benchmark.pedantic(step, rounds=50, warmup_rounds=2)
