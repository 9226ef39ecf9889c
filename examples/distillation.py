"""Knowledge distillation: a CNN teacher on the 8x8 digits, then a small MLP student trained
on the teacher's temperature-softened outputs (KL divergence, scaled by T^2) plus the usual
cross-entropy on the labels. The same student trained on the labels alone is the baseline.

python examples/distillation.py            # ends with `distilled student accuracy: 0.9xx`
python examples/distillation.py --smoke    # one epoch each, for the test suite
"""

import argparse

import numpy as np
from tqdm import tqdm

import ember
from ember import nn
from ember.data import DataLoader, TensorDataset, load_digits
from ember.nn import functional as F

TEMPERATURE = 2.0
ALPHA = 0.5  # weight of the distillation term; 1 - ALPHA goes to the cross-entropy


def split(images, labels, held_out=0.2, seed=0):
    """A fixed random 80/20 split of the digits."""
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(len(labels) * held_out)
    test, train = order[:n_test], order[n_test:]
    return images[train], labels[train], images[test], labels[test]


def make_teacher():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),  # (N, 32, 8, 8)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 32, 4, 4)
        nn.Conv2d(32, 64, 3, padding=1),  # (N, 64, 4, 4)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 64, 2, 2)
        nn.Flatten(),
        nn.Linear(64 * 2 * 2, 10),
    )


def make_student():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))


def train(model, loader, epochs, loss_of, desc):
    """Adam over `epochs` passes; loss_of(logits, *rest_of_batch) gives the loss."""
    optimizer = ember.optim.Adam(model.parameters(), lr=3e-3)
    with tqdm(range(epochs), desc=desc, unit="epoch") as bar:
        for _ in bar:
            model.train()
            for x, *rest in loader:
                loss = loss_of(model(x), *rest)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return model


def accuracy(model, x, y):
    with ember.no_grad():
        return float((model(ember.tensor(x)).numpy().argmax(axis=1) == y).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher-epochs", type=int, default=15)
    parser.add_argument("--student-epochs", type=int, default=30)
    parser.add_argument("--smoke", action="store_true", help="one epoch each, for the tests")
    args = parser.parse_args()
    teacher_epochs = 1 if args.smoke else args.teacher_epochs
    student_epochs = 1 if args.smoke else args.student_epochs

    ember.manual_seed(0)
    x_train, y_train, x_test, y_test = split(*load_digits())
    xs, ys = ember.tensor(x_train), ember.tensor(y_train)
    cross_entropy = nn.CrossEntropyLoss()

    def labelled():
        return DataLoader(TensorDataset(xs, ys), batch_size=32, shuffle=True)

    teacher = train(make_teacher(), labelled(), teacher_epochs, cross_entropy, "teacher")
    print(f"teacher accuracy: {accuracy(teacher, x_test, y_test):.3f}")

    ember.manual_seed(1)
    alone = train(make_student(), labelled(), student_epochs, cross_entropy, "student alone")
    print(f"student alone accuracy: {accuracy(alone, x_test, y_test):.3f}")

    with ember.no_grad():
        soft_targets = F.softmax(teacher(xs) / TEMPERATURE, dim=1)
    kl = nn.KLDivLoss(reduction="batchmean")

    def distillation_loss(logits, y, soft):
        soft_loss = kl(F.log_softmax(logits / TEMPERATURE, dim=1), soft) * TEMPERATURE**2
        return ALPHA * soft_loss + (1 - ALPHA) * cross_entropy(logits, y)

    ember.manual_seed(1)  # the same initial student as the baseline
    loader = DataLoader(TensorDataset(xs, ys, soft_targets), batch_size=32, shuffle=True)
    student = train(make_student(), loader, student_epochs, distillation_loss, "distilled")
    print(f"distilled student accuracy: {accuracy(student, x_test, y_test):.3f}")


if __name__ == "__main__":
    main()
