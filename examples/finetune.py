"""Transfer learning: pre-train a CNN on the digits 0-4, freeze its convolutional features, and
fine-tune a new head on the digits 5-9 from a handful of labelled examples per class.

python examples/finetune.py            # ends with `accuracy on 5-9 after fine-tuning: 0.9xx`
python examples/finetune.py --smoke    # one epoch each, for the test suite
"""

import argparse

import numpy as np
from tqdm import tqdm

import ember
from ember import nn
from ember.data import DataLoader, TensorDataset, load_digits

SHOTS = 10  # labelled examples per new class for fine-tuning


def split(images, labels, held_out=0.2, seed=0):
    """A fixed random 80/20 split of the digits."""
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(len(labels) * held_out)
    test, train = order[:n_test], order[n_test:]
    return images[train], labels[train], images[test], labels[test]


def make_features():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),  # (N, 16, 8, 8)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 16, 4, 4)
        nn.Conv2d(16, 32, 3, padding=1),  # (N, 32, 4, 4)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 32, 2, 2)
        nn.Flatten(),  # (N, 128)
    )


def train(model, parameters, x, y, epochs, desc, batch_size=32):
    optimizer = ember.optim.Adam(parameters, lr=3e-3)
    loader = DataLoader(
        TensorDataset(ember.tensor(x), ember.tensor(y)), batch_size=batch_size, shuffle=True
    )
    loss_fn = nn.CrossEntropyLoss()
    with tqdm(range(epochs), desc=desc, unit="epoch") as bar:
        for _ in bar:
            model.train()
            for xb, yb in loader:
                loss = loss_fn(model(xb), yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()


def accuracy(model, x, y):
    with ember.no_grad():
        return float((model(ember.tensor(x)).numpy().argmax(axis=1) == y).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-epochs", type=int, default=15)
    parser.add_argument("--finetune-epochs", type=int, default=60)
    parser.add_argument("--smoke", action="store_true", help="one epoch each, for the tests")
    args = parser.parse_args()
    pretrain_epochs = 1 if args.smoke else args.pretrain_epochs
    finetune_epochs = 1 if args.smoke else args.finetune_epochs

    ember.manual_seed(0)
    x_train, y_train, x_test, y_test = split(*load_digits())
    old, new = y_train < 5, y_test >= 5

    features = make_features()
    pretrained = nn.Sequential(features, nn.Linear(128, 5))
    train(pretrained, pretrained.parameters(), x_train[old], y_train[old], pretrain_epochs, "0-4")
    old_accuracy = accuracy(pretrained, x_test[~new], y_test[~new])
    print(f"accuracy on 0-4 after pre-training: {old_accuracy:.3f}")

    # a few labelled examples of each new class; the labels 5-9 become the head's classes 0-4
    rng = np.random.default_rng(1)
    few = np.concatenate(
        [rng.choice(np.flatnonzero(y_train == c), SHOTS, replace=False) for c in range(5, 10)]
    )
    x_few, y_few = x_train[few], y_train[few] - 5
    x_new, y_new = x_test[new], y_test[new] - 5

    for p in features.parameters():
        p.requires_grad = False
    model = nn.Sequential(features, nn.Linear(128, 5))
    print(f"accuracy on 5-9 before fine-tuning: {accuracy(model, x_new, y_new):.3f}")
    head = [p for p in model.parameters() if p.requires_grad]
    train(model, head, x_few, y_few, finetune_epochs, "fine-tune 5-9", batch_size=10)

    print(f"accuracy on 5-9 after fine-tuning: {accuracy(model, x_new, y_new):.3f}")


if __name__ == "__main__":
    main()
