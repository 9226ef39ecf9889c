"""One training epoch of the demo CNN (`python -m ember demo`: Conv-ReLU-MaxPool x2, Linear) on
the 80% training split of the digits, batch 32, Adam, in ember and in PyTorch CPU in the same run
with the same thread count. Both shuffle and batch by indexing the in-memory arrays (ember's
DataLoader over a TensorDataset; randperm and indexing in PyTorch), so the time is the model's.

python -m pytest bench/bench_train.py --benchmark-json=bench/train.json
python bench/report.py bench/train.json torch
"""

import numpy as np
import pytest

import ember
from ember import nn
from ember.data import DataLoader, TensorDataset
from ember.demo import BATCH, LR, _split, make_model

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def digits():
    from ember.data import load_digits

    return _split(*load_digits())


def torch_model(torch, ember_model):
    """The demo CNN in PyTorch, with ember_model's weights (the state_dict keys are the same)."""
    tnn = torch.nn
    model = tnn.Sequential(
        tnn.Conv2d(1, 16, 3, padding=1),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(16, 32, 3, padding=1),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(32 * 2 * 2, 10),
    )
    state = {k: torch.from_numpy(np.array(v)) for k, v in ember_model.state_dict().items()}
    model.load_state_dict(state)
    return model


def ember_epoch(digits):
    x_train, y_train, _, _ = digits
    ember.manual_seed(0)
    model = make_model()
    optimizer = ember.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(
        TensorDataset(ember.tensor(x_train), ember.tensor(y_train)), batch_size=BATCH, shuffle=True
    )

    def run():
        for x, y in loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return loss.item()

    return model, run


def torch_epoch(torch, digits):
    x_train, y_train, _, _ = digits
    ember.manual_seed(0)
    model = torch_model(torch, make_model())
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(x_train), torch.from_numpy(y_train)
    generator = torch.Generator().manual_seed(0)

    def run():
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), BATCH):
            batch = order[start : start + BATCH]
            loss = loss_fn(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return loss.item()

    return model, run


def test_same_model_same_logits(digits):
    """Validates the comparison: ember's demo CNN and the PyTorch copy compute the same function."""
    torch = pytest.importorskip("torch")
    x_test = digits[2]
    ember.manual_seed(0)
    model = make_model()
    with ember.no_grad():
        ours = model(ember.tensor(x_test)).numpy()
    with torch.no_grad():
        theirs = torch_model(torch, model)(torch.from_numpy(x_test)).numpy()
    assert np.linalg.norm(ours - theirs) / np.linalg.norm(theirs) < 1e-5


@pytest.mark.parametrize("impl", ["ember", "torch"])
def bench_train_epoch(benchmark, digits, impl):
    if impl == "torch":
        torch = pytest.importorskip("torch")
        torch.set_num_threads(ember.get_num_threads())
        _, run = torch_epoch(torch, digits)
    else:
        _, run = ember_epoch(digits)
    first = run()
    assert np.isfinite(first), "refusing to time a diverging epoch"
    benchmark.group = f"train epoch: demo CNN, {len(digits[1])} digits, batch {BATCH}, Adam"
    benchmark.extra_info.update(
        impl=impl, threads=ember.get_num_threads(), samples=len(digits[1]), batch=BATCH
    )
    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
