"""ember.optim: SGD/Adam/AdamW trajectories against torch.optim with identical parameters and
gradients, parameter groups, state dicts, and the learning-rate schedulers."""

import numpy as np
import pytest

import ember
from ember import optim


def make_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in [(4, 3), (3,), (2, 2, 2)]]


def fake_grad(p, step, i):
    """A deterministic gradient that depends on the parameter's value (as a real one does)."""
    return np.sin(3 * p + step + i) + 0.1 * p


def run_ember(make_optimizer, arrays, steps, groups=None):
    params = [ember.tensor(a, requires_grad=True) for a in arrays]
    opt = make_optimizer(params if groups is None else groups(params))
    for step in range(steps):
        for i, p in enumerate(params):
            p.grad = ember.tensor(fake_grad(p.numpy(), step, i))
        opt.step()
    return params, opt


def run_torch(make_optimizer, arrays, steps, groups=None):
    torch = pytest.importorskip("torch")
    params = [torch.tensor(a, requires_grad=True) for a in arrays]
    opt = make_optimizer(params if groups is None else groups(params))
    for step in range(steps):
        for i, p in enumerate(params):
            p.grad = torch.tensor(fake_grad(p.detach().numpy(), step, i))
        opt.step()
    return params, opt


CONFIGS = {
    "sgd": ("SGD", dict(lr=0.1)),
    "sgd_momentum": ("SGD", dict(lr=0.1, momentum=0.9)),
    "sgd_dampening_wd": ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    "sgd_nesterov": ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "adam": ("Adam", dict(lr=0.01)),
    "adam_wd_betas": ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    "adam_amsgrad": ("Adam", dict(lr=0.01, amsgrad=True)),
    "adamw": ("AdamW", dict(lr=0.01)),
    "adamw_wd": ("AdamW", dict(lr=0.03, weight_decay=0.2, betas=(0.5, 0.9))),
}


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_trajectory_matches_torch(config, dtype, tol):
    torch = pytest.importorskip("torch")
    name, kwargs = CONFIGS[config]
    arrays = make_params(dtype)
    ours, _ = run_ember(lambda p: getattr(optim, name)(p, **kwargs), arrays, steps=6)
    theirs, _ = run_torch(lambda p: getattr(torch.optim, name)(p, **kwargs), arrays, steps=6)
    for o, t in zip(ours, theirs, strict=True):
        assert o.dtype == dtype
        np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=tol, atol=tol)


def test_param_groups_match_torch():
    torch = pytest.importorskip("torch")
    arrays = make_params(np.float64)

    def groups(params):
        return [{"params": params[:2]}, {"params": params[2:], "lr": 0.5, "momentum": 0.0}]

    ours, opt = run_ember(lambda g: optim.SGD(g, lr=0.1, momentum=0.9), arrays, 4, groups)
    theirs, _ = run_torch(lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9), arrays, 4, groups)
    for o, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=1e-12)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.0 and opt.param_groups[0]["nesterov"] is False


@pytest.mark.parametrize("config", ["sgd_momentum", "adam_amsgrad", "adamw_wd"])
def test_state_dict_round_trip_continues_the_trajectory(config):
    name, kwargs = CONFIGS[config]
    arrays = make_params(np.float64)
    straight, _ = run_ember(lambda p: getattr(optim, name)(p, **kwargs), arrays, steps=6)

    first, opt = run_ember(lambda p: getattr(optim, name)(p, **kwargs), arrays, steps=3)
    state = opt.state_dict()
    assert sorted(state["state"]) == [0, 1, 2]
    assert state["param_groups"][0]["params"] == [0, 1, 2]
    resumed = [ember.tensor(p.numpy(), requires_grad=True) for p in first]
    opt2 = getattr(optim, name)(resumed, lr=123.0)
    opt2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == kwargs["lr"]
    for step in range(3, 6):
        for i, p in enumerate(resumed):
            p.grad = ember.tensor(fake_grad(p.numpy(), step, i))
        opt2.step()
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # the saved state is a copy: stepping the first optimizer again does not change it
    key = "momentum_buffer" if name == "SGD" else "exp_avg"
    before = state["state"][0][key].copy()
    opt.step()
    np.testing.assert_array_equal(state["state"][0][key], before)


def test_load_state_dict_checks_the_layout():
    params = [ember.zeros(2, requires_grad=True), ember.zeros(3, requires_grad=True)]
    state = optim.SGD(params, lr=0.1).state_dict()
    with pytest.raises(ValueError, match="doesn't match the size"):
        optim.SGD(params[:1], lr=0.1).load_state_dict(state)


def test_zero_grad_and_skipping_parameters_without_grad():
    a, b = ember.ones(2, requires_grad=True), ember.ones(2, requires_grad=True)
    opt = optim.SGD([a, b], lr=0.5)
    a.grad = ember.tensor([1.0, 2.0])
    opt.step()
    assert a.tolist() == [0.5, 0.0] and b.tolist() == [1.0, 1.0]
    opt.zero_grad()
    assert a.grad is None


def test_closure_is_called_with_grad_enabled():
    w = ember.tensor([2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with ember.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 4.0 and w.item() == 1.0


def test_constructor_errors():
    p = [ember.zeros(1, requires_grad=True)]
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam(p, lr=-1)
    with pytest.raises(ValueError, match="beta"):
        optim.AdamW(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": p}, {"params": p}], lr=0.1)
    with pytest.raises(TypeError):
        optim.SGD(p[0], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p[0] * 2], lr=0.1)


def test_adamw_defaults():
    opt = optim.AdamW([ember.zeros(1, requires_grad=True)])
    group = opt.param_groups[0]
    assert group["weight_decay"] == 1e-2 and group["lr"] == 1e-3 and group["betas"] == (0.9, 0.999)


# ---- learning-rate schedulers ------------------------------------------------------------

SCHEDULERS = {
    "step": ("StepLR", dict(step_size=3, gamma=0.5)),
    "cosine": ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),
    "lambda": ("LambdaLR", dict(lr_lambda=lambda epoch: 0.95**epoch / (1 + epoch % 2))),
}


@pytest.mark.parametrize("name", SCHEDULERS)
def test_scheduler_matches_torch(name):
    torch = pytest.importorskip("torch")
    cls, kwargs = SCHEDULERS[name]

    def lrs(lib, params):
        opt = lib.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.3}], lr=0.1)
        sched = getattr(lib.lr_scheduler, cls)(opt, **kwargs)
        seen = [sched.get_last_lr()]
        for _ in range(20):  # past T_max: the cosine turns back up, as PyTorch's does
            opt.step()
            sched.step()
            seen.append(sched.get_last_lr())
            assert [g["lr"] for g in opt.param_groups] == seen[-1]
        return np.array(seen)

    ours = lrs(optim, [ember.zeros(1, requires_grad=True) for _ in range(2)])
    theirs = lrs(torch.optim, [torch.zeros(1, requires_grad=True) for _ in range(2)])
    np.testing.assert_allclose(ours, theirs, rtol=1e-13)


def test_scheduler_state_dict_round_trip():
    p = [ember.zeros(1, requires_grad=True)]
    opt = optim.SGD(p, lr=1.0)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2)
    for _ in range(3):
        sched.step()
    state = sched.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 3
    opt2 = optim.SGD(p, lr=1.0)
    sched2 = optim.lr_scheduler.StepLR(opt2, step_size=2)
    sched2.load_state_dict(state)
    opt2.param_groups[0]["lr"] = sched.get_last_lr()[0]
    sched.step()
    sched2.step()
    assert sched.get_last_lr() == sched2.get_last_lr()
    lam = optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)
    assert lam.state_dict()["lr_lambdas"] == [None]


# ---- the fused C++ steps (ember._C.sgd_step / adam_step) ---------------------------------

FUSED = {"SGD": "sgd_step", "Adam": "adam_step", "AdamW": "adam_step"}


def count_calls(monkeypatch, name):
    calls = []
    real = getattr(ember._C, name)

    def counted(*args, **kwargs):
        calls.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(ember._C, name, counted)
    return calls


def numpy_path(monkeypatch):
    monkeypatch.setattr(optim.optimizer, "_fusable", lambda params: False)


@pytest.mark.parametrize("config", ["sgd_nesterov", "adam_amsgrad", "adamw_wd"])
def test_fused_path_is_one_call_per_group_and_step(monkeypatch, config):
    name, kwargs = CONFIGS[config]
    calls = count_calls(monkeypatch, FUSED[name])

    def groups(params):
        return [{"params": params[:2]}, {"params": params[2:], "lr": 0.02}]

    run_ember(lambda g: getattr(optim, name)(g, **kwargs), make_params(np.float32), 4, groups)
    assert calls == [2, 1] * 4
    calls.clear()
    run_ember(lambda p: getattr(optim, name)(p, **kwargs), make_params(np.float64), 4)
    assert calls == []


def fused_vs_numpy(monkeypatch, name, kwargs, arrays, steps):
    """Bitwise: the kernels round as NumPy does (same operation order, no FMA contraction)."""
    with monkeypatch.context() as m:
        calls = count_calls(m, FUSED[name])
        fused, opt = run_ember(lambda p: getattr(optim, name)(p, **kwargs), arrays, steps)
    assert calls == [len(arrays)] * steps
    with monkeypatch.context() as m:
        numpy_path(m)
        plain, opt2 = run_ember(lambda p: getattr(optim, name)(p, **kwargs), arrays, steps)
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    state, state2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert state.keys() == state2.keys()
    for i in state:
        assert state[i].keys() == state2[i].keys()
        for k, v in state[i].items():
            np.testing.assert_array_equal(v, state2[i][k])


@pytest.mark.parametrize("config", CONFIGS)
def test_fused_matches_numpy_path_on_every_isa(monkeypatch, isa, config, rng):
    name, kwargs = CONFIGS[config]
    # many small parameters of sizes around the vector widths, and one threaded large one
    shapes = [(n,) for n in (1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100)] + [(5, 7), (317, 331)]
    arrays = [randn_f32(rng, s) for s in shapes]
    fused_vs_numpy(monkeypatch, name, kwargs, arrays, steps=3)


def randn_f32(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def test_fused_with_transposed_grads_and_uneven_steps(monkeypatch):
    def run():
        params = [
            ember.tensor(randn_f32(np.random.default_rng(1), (6, 5)), requires_grad=True)
            for _ in range(3)
        ]
        opt = optim.Adam(params, lr=0.01, amsgrad=True)
        for step in range(4):
            for i, p in enumerate(params):
                # parameter 2 has no gradient on the first step, so its Adam step lags
                g = (
                    None
                    if (i == 2 and step == 0)
                    else np.asfortranarray(fake_grad(p.numpy(), step, i))
                )
                p.grad = None if g is None else ember.tensor(g)
                assert g is None or not p.grad.data.flags.c_contiguous
            opt.step()
        return params, opt

    calls = count_calls(monkeypatch, "adam_step")
    fused, opt = run()
    # steps (1, 1), then (t, t) and t - 1 for parameter 2: two calls
    assert calls == [2] + [2, 1] * 3
    assert [opt.state[p]["step"] for p in fused] == [4, 4, 3]
    numpy_path(monkeypatch)
    plain, _ = run()
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_fused_bindings_reject_bad_inputs():
    p = np.zeros(4, np.float32)
    g = np.ones(4, np.float32)
    sgd = dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False)
    adam = dict(
        lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.0, step_size=1.0,
        bias_correction2_sqrt=0.1, decoupled=False,
    )  # fmt: skip
    with pytest.raises(TypeError, match="float32"):
        ember._C.sgd_step([p.astype(np.float64)], [g], [np.zeros(4, np.float32)], [True], **sgd)
    with pytest.raises(TypeError, match="NumPy array"):
        ember._C.sgd_step([p], [[1.0] * 4], [np.zeros(4, np.float32)], [True], **sgd)
    with pytest.raises(ValueError, match="C-contiguous"):
        ember._C.sgd_step(
            [p], [np.ones(8, np.float32)[::2]], [np.zeros(4, np.float32)], [True], **sgd
        )
    with pytest.raises(ValueError, match="elements"):
        ember._C.sgd_step([p], [g[:3]], [np.zeros(4, np.float32)], [True], **sgd)
    with pytest.raises(ValueError, match="one array per parameter"):
        ember._C.sgd_step([p], [g], [], [], **sgd)
    ro = p.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        ember._C.sgd_step([ro], [g], [np.zeros(4, np.float32)], [True], **sgd)
    with pytest.raises(ValueError, match="overlaps"):
        ember._C.sgd_step([p], [g], [p], [True], **sgd)
    m, v = np.zeros(4, np.float32), np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="one array per parameter"):
        ember._C.adam_step([p], [g], [m], [], [], **adam)
    with pytest.raises(ValueError, match="overlaps"):
        ember._C.adam_step([p], [g], [m], [m], [], **adam)
    with pytest.raises(ValueError, match="elements"):
        ember._C.adam_step([p], [g], [m], [v], [np.zeros(5, np.float32)], **adam)
    ember._C.adam_step([p], [g], [m], [v], [], **adam)
    assert np.all(p < 0) and np.all(m > 0)


def test_fused_maximize_is_a_negated_gradient(rng):
    p0, g = randn_f32(rng, (37,)), randn_f32(rng, (37,))
    sgd = dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01, nesterov=False)
    adam = dict(
        lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.01, step_size=0.5,
        bias_correction2_sqrt=0.2, decoupled=False,
    )  # fmt: skip
    for fn, kwargs, n_state in [(ember._C.sgd_step, sgd, 1), (ember._C.adam_step, adam, 2)]:
        results = []
        for maximize, grad in [(True, g), (False, -g)]:
            p, state = p0.copy(), [np.zeros_like(p0) for _ in range(n_state)]
            extra = ([state[0]], [True]) if n_state == 1 else ([state[0]], [state[1]], [])
            fn([p], [grad], *extra, maximize=maximize, **kwargs)
            results.append(p)
        np.testing.assert_array_equal(results[0], results[1])
        assert not np.array_equal(results[0], p0)


def test_duplicate_parameters_take_the_numpy_path(monkeypatch):
    calls = count_calls(monkeypatch, "sgd_step")
    w = ember.ones(3, requires_grad=True)
    opt = optim.SGD([w, w], lr=0.5)
    w.grad = ember.ones(3)
    opt.step()
    assert calls == [] and w.tolist() == [0.0, 0.0, 0.0]
