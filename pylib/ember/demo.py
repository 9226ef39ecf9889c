"""`python -m ember demo`: trains a small CNN (Conv-ReLU-MaxPool x2, then Linear) on the bundled
8x8 digits with Adam, every convolution, pooling and matrix product forward and backward on
ember's kernels, and reports the accuracy on the 20% of digits held out."""

from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

import ember
from ember import nn
from ember.data import DataLoader, TensorDataset, load_digits

BATCH = 32
LR = 3e-3


def make_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),  # (N, 16, 8, 8)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 16, 4, 4)
        nn.Conv2d(16, 32, 3, padding=1),  # (N, 32, 4, 4)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 32, 2, 2)
        nn.Flatten(),
        nn.Linear(32 * 2 * 2, 10),
    )


def _split(images, labels, held_out=0.2):
    order = np.random.default_rng(0).permutation(len(labels))
    n_test = int(len(labels) * held_out)
    test, train = order[:n_test], order[n_test:]
    return images[train], labels[train], images[test], labels[test]


def run(epochs: int | None = None, seed: int = 0) -> float:
    epochs = 15 if epochs is None else epochs
    ember.manual_seed(seed)
    x_train, y_train, x_test, y_test = _split(*load_digits())
    loader = DataLoader(
        TensorDataset(ember.tensor(x_train), ember.tensor(y_train)), batch_size=BATCH, shuffle=True
    )
    model = make_model()
    optimizer = ember.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    kernels = ember.cpu_info()["kernels"]
    print(
        f"ember {ember.__version__}: CNN on {len(y_train)} digits, {len(y_test)} held out; "
        f"kernels {kernels['gemm']}, {kernels['pool']}; {ember.get_num_threads()} threads"
    )
    start = time.perf_counter()
    with tqdm(range(epochs), desc="training", unit="epoch") as bar:
        for _ in bar:
            model.train()
            for x, y in loader:
                loss = loss_fn(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    with ember.no_grad():
        predicted = model(ember.tensor(x_test)).numpy().argmax(axis=1)
    accuracy = float((predicted == y_test).mean())
    print(f"test accuracy: {accuracy:.3f} ({time.perf_counter() - start:.1f} s)")
    return accuracy
