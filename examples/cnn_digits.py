"""A small CNN (Conv-ReLU-MaxPool twice, then Linear) on the bundled 8x8 digits, trained with Adam.

python examples/cnn_digits.py                  # 20 epochs, ends with `test accuracy: 0.9xx`
python examples/cnn_digits.py --smoke          # one epoch, for the test suite
python examples/cnn_digits.py --device cuda    # on the GPU (ember's CUDA kernels, via CuPy)
"""

import argparse

import numpy as np
from tqdm import tqdm

import ember
from ember import nn
from ember.data import DataLoader, TensorDataset, load_digits


def split(images, labels, held_out=0.2, seed=0):
    """A fixed random 80/20 split of the digits."""
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(len(labels) * held_out)
    test, train = order[:n_test], order[n_test:]
    return images[train], labels[train], images[test], labels[test]


def make_model():
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="one epoch, for the tests")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    epochs = 1 if args.smoke else args.epochs

    ember.manual_seed(0)
    x_train, y_train, x_test, y_test = split(*load_digits())
    loader = DataLoader(
        TensorDataset(ember.tensor(x_train), ember.tensor(y_train)), batch_size=32, shuffle=True
    )
    model = make_model().to(args.device)
    optimizer = ember.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()

    with tqdm(range(epochs), desc="training", unit="epoch") as bar:
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
        logits = model(ember.tensor(x_test).to(args.device))
        predicted = logits.to("cpu").numpy().argmax(axis=1)
    print(f"test accuracy: {(predicted == y_test).mean():.3f}")


if __name__ == "__main__":
    main()
