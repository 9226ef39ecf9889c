"""A 64-128-10 multilayer perceptron on the bundled 8x8 digits, trained with SGD and momentum.

python examples/mlp_digits.py                  # 30 epochs, ends with `test accuracy: 0.9xx`
python examples/mlp_digits.py --device cuda    # the same on the GPU (needs CuPy)
python examples/mlp_digits.py --smoke          # one epoch, for the test suite
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--smoke", action="store_true", help="one epoch, for the tests")
    args = parser.parse_args(argv)
    epochs = 1 if args.smoke else args.epochs
    device = args.device

    ember.manual_seed(0)
    images, labels = load_digits()
    x_train, y_train, x_test, y_test = split(images.reshape(len(images), -1), labels)
    loader = DataLoader(
        TensorDataset(ember.tensor(x_train), ember.tensor(y_train)), batch_size=32, shuffle=True
    )
    # initialised on the host by ember's generator, then moved: the same weights on every device
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).to(device)
    optimizer = ember.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    with tqdm(range(epochs), desc="training", unit="epoch") as bar:
        for _ in bar:
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                loss = loss_fn(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")

    with ember.no_grad():
        predicted = model(ember.tensor(x_test, device=device)).argmax(dim=1).cpu().numpy()
    print(f"test accuracy: {(predicted == y_test).mean():.3f}")


if __name__ == "__main__":
    main()
