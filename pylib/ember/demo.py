"""`python -m ember demo`: trains a 64-128-10 MLP on the bundled digits, every matrix product
(forward and backward) on ember's GEMM kernels, and reports held-out accuracy."""

from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

import ember
from ember import ops
from ember.data import load_digits

HIDDEN = 128
BATCH = 32
LR = 0.05
MOMENTUM = 0.9


def _split(images, labels, rng, held_out=0.2):
    order = rng.permutation(len(labels))
    n_test = int(len(labels) * held_out)
    x = images.reshape(len(labels), -1)
    return x[order[n_test:]], labels[order[n_test:]], x[order[:n_test]], labels[order[:n_test]]


def _init(rng, fan_in, fan_out):
    bound = 1.0 / np.sqrt(fan_in)  # PyTorch's default for Linear
    w = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
    return w, rng.uniform(-bound, bound, fan_out).astype(np.float32)


def _forward(params, x):
    w1, b1, w2, b2 = params
    h = np.maximum(ops.gemm(x, w1, trans_b=True, beta=1.0, c=b1), 0.0)
    return h, ops.gemm(h, w2, trans_b=True, beta=1.0, c=b2)


def run(epochs: int | None = None, seed: int = 0) -> float:
    epochs = 30 if epochs is None else epochs
    rng = np.random.default_rng(seed)
    x_train, y_train, x_test, y_test = _split(*load_digits(), rng)
    params = [*_init(rng, x_train.shape[1], HIDDEN), *_init(rng, HIDDEN, 10)]
    velocity = [np.zeros_like(p) for p in params]
    print(
        f"ember {ember.__version__}: MLP {x_train.shape[1]}-{HIDDEN}-10 on {len(y_train)} digits, "
        f"kernels {ember.cpu_info()['kernels']['gemm']}, {ember.get_num_threads()} threads"
    )
    start = time.perf_counter()
    bar = tqdm(range(epochs), desc="training", unit="epoch")
    for _ in bar:
        order = rng.permutation(len(y_train))
        for i in range(0, len(order), BATCH):
            idx = order[i : i + BATCH]
            x, y = x_train[idx], y_train[idx]
            h, logits = _forward(params, x)
            # softmax cross-entropy: d(loss)/d(logits) = (softmax - onehot) / batch
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            loss = -np.log(p[np.arange(len(y)), y] + 1e-12).mean()
            p[np.arange(len(y)), y] -= 1.0
            dlogits = p / len(y)
            w1, _, w2, _ = params
            dh = ops.gemm(dlogits, w2) * (h > 0)
            grads = [
                ops.gemm(dh, x, trans_a=True),
                dh.sum(0),
                ops.gemm(dlogits, h, trans_a=True),
                dlogits.sum(0),
            ]
            for param, vel, grad in zip(params, velocity, grads, strict=True):
                vel *= MOMENTUM
                vel += grad
                param -= LR * vel
        bar.set_postfix(loss=f"{loss:.3f}")
    accuracy = float((_forward(params, x_test)[1].argmax(axis=1) == y_test).mean())
    print(f"test accuracy: {accuracy:.3f} ({time.perf_counter() - start:.1f} s)")
    return accuracy
