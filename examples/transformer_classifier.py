"""A tiny Transformer encoder (token and position embeddings, a TransformerEncoder of
TransformerEncoderLayers with multi-head attention, mean pooling, a linear head) on a synthetic
sequence task: does the sequence of random tokens hold both a 3 and a 7 (anywhere)? Attention is
what lets a token see whether the other one is present. Prints the test accuracy at the end.

    python examples/transformer_classifier.py                # well under a minute on 2 cores
    python examples/transformer_classifier.py --smoke        # a few seconds: checks that it runs
    python examples/transformer_classifier.py --device cuda  # on the GPU (ember._cuda + CuPy)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

import ember
from ember import nn
from ember.data import DataLoader, TensorDataset

VOCAB, LENGTH, PATTERN = 10, 16, (3, 7)


def make_data(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """n sequences (n, LENGTH) of tokens and their labels: 1 when the sequence holds both
    tokens of PATTERN (half of them), 0 when it holds one of them or neither (the other half,
    in equal parts); every other token is drawn uniformly from the rest of the vocabulary."""
    others = np.setdiff1d(np.arange(VOCAB), PATTERN)
    tokens = rng.choice(others, (n, LENGTH))
    labels = rng.integers(0, 2, n)
    case = np.where(labels == 1, 3, rng.integers(0, 3, n))  # bit 0: first token, bit 1: second
    for row, c in zip(tokens, case, strict=True):
        places = rng.permutation(LENGTH)
        if c & 1:
            row[places[0]] = PATTERN[0]
        if c & 2:
            row[places[1]] = PATTERN[1]
    return tokens, labels


class Classifier(nn.Module):
    def __init__(self, d_model: int = 32, nhead: int = 4, layers: int = 1):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, d_model)
        self.position = nn.Parameter(
            np.random.default_rng(0).normal(0, 0.1, (LENGTH, d_model)).astype(np.float32)
        )
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(
                d_model, nhead, dim_feedforward=64, dropout=0.0, batch_first=True
            ),
            layers,
        )
        self.head = nn.Linear(d_model, 2)

    def forward(self, tokens):
        x = self.encoder(self.embedding(tokens) + self.position)
        return self.head(x.mean(dim=1))


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="one short epoch only")
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="where the model and data live"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs, args.train = 1, 256
    if args.device == "cuda" and not ember.cuda_available():
        parser.error("--device cuda: no CUDA GPU is visible to ember (see python -m ember info)")

    ember.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x_train, y_train = make_data(args.train, rng)
    x_test, y_test = make_data(1000, rng)
    loader = DataLoader(
        TensorDataset(ember.tensor(x_train), ember.tensor(y_train)), batch_size=64, shuffle=True
    )
    model = Classifier().to(args.device)
    optimizer = ember.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    print(
        f"Transformer encoder on {args.device}: does a sequence of {LENGTH} tokens hold both "
        f"tokens of {PATTERN}?"
    )
    start = time.perf_counter()
    with tqdm(range(args.epochs), desc="training", unit="epoch") as bar:
        for _ in bar:
            model.train()
            for x, y in loader:
                x, y = x.to(args.device), y.to(args.device)
                loss = loss_fn(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    with ember.no_grad():
        predicted = model(ember.tensor(x_test).to(args.device)).numpy().argmax(axis=1)
    accuracy = float((predicted == y_test).mean())
    print(f"test accuracy: {accuracy:.3f} ({time.perf_counter() - start:.1f} s)")
    return accuracy


if __name__ == "__main__":
    main()
