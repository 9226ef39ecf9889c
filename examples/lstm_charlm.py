"""A 2-layer LSTM character language model trained on text shipped with Python (the source of
the standard library's textwrap module), on ember's fused LSTM kernels; prints the loss on a
fixed batch before and after training and samples text from the trained model.

    python examples/lstm_charlm.py                  # about a minute on 2 cores
    python examples/lstm_charlm.py --smoke          # a few seconds: checks that it runs
    python examples/lstm_charlm.py --device cuda    # on the GPU (ember's CUDA kernels, via CuPy)
"""

from __future__ import annotations

import argparse
import inspect
import textwrap
import time

import numpy as np
from tqdm import tqdm

import ember
from ember import nn
from ember.nn import functional as F


class CharLM(nn.Module):
    def __init__(self, vocab: int, embed: int = 32, hidden: int = 128, layers: int = 2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens, state=None):
        """Logits (B, T, vocab) for tokens (B, T), and the LSTM's final state."""
        y, state = self.lstm(self.embedding(tokens), state)
        return self.head(y), state


def load_text() -> tuple[np.ndarray, list[str]]:
    text = inspect.getsource(textwrap)
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    return np.array([index[c] for c in text], dtype=np.int64), chars


def batch(data: np.ndarray, rng, size: int, length: int, device: str):
    """size random windows on the device: inputs (size, length) and the next characters as
    targets."""
    starts = rng.integers(0, len(data) - length - 1, size)
    windows = np.stack([data[s : s + length + 1] for s in starts])
    return ember.tensor(windows[:, :-1]).to(device), ember.tensor(windows[:, 1:]).to(device)


def loss_of(model, tokens, targets):
    logits, _ = model(tokens)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


@ember.no_grad()
def sample(model, chars, prompt: str, length: int, rng, device: str, temperature=0.8) -> str:
    index = {c: i for i, c in enumerate(chars)}
    model.eval()
    logits, state = model(ember.tensor(np.array([[index[c] for c in prompt]])).to(device))
    out = []
    for _ in range(length):
        z = logits.to("cpu").numpy()[0, -1].astype(np.float64) / temperature
        p = np.exp(z - z.max())
        nxt = int(rng.choice(len(chars), p=p / p.sum()))
        out.append(chars[nxt])
        logits, state = model(ember.tensor(np.array([[nxt]])).to(device), state)
    return prompt + "".join(out)


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a few steps only")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.length = 8, 16

    ember.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    data, chars = load_text()
    model = CharLM(len(chars)).to(args.device)
    optimizer = ember.optim.Adam(model.parameters(), lr=5e-3)
    eval_tokens, eval_targets = batch(
        data, np.random.default_rng(1234), 64, args.length, args.device
    )
    with ember.no_grad():
        start_loss = loss_of(model, eval_tokens, eval_targets).item()
    print(
        f"2-layer LSTM on {len(data)} characters of textwrap.py ({len(chars)} distinct); "
        f"loss at start: {start_loss:.3f}"
    )
    start = time.perf_counter()
    with tqdm(range(args.steps), desc="training", unit="step") as bar:
        for _ in bar:
            model.train()
            loss = loss_of(model, *batch(data, rng, args.batch, args.length, args.device))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    with ember.no_grad():
        end_loss = loss_of(model, eval_tokens, eval_targets).item()
    drop = 1 - end_loss / start_loss
    text = sample(model, chars, "def ", 200 if not args.smoke else 20, rng, args.device)
    print(f"sample:\n{text}\n")
    print(
        f"loss: {start_loss:.3f} -> {end_loss:.3f} ({100 * drop:.0f}% lower) in "
        f"{time.perf_counter() - start:.1f} s"
    )
    return drop


if __name__ == "__main__":
    main()
