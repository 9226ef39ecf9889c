"""A recommender: matrix factorisation of a synthetic, partly observed ratings matrix.

Users and items get learned embeddings and biases; a rating is predicted as
mean + user bias + item bias + <user vector, item vector>, fitted by MSE on the observed
entries with Adam. The items come from a few hidden clusters (similar items share a taste
vector), so at the end the nearest items by cosine similarity of the learned item embeddings
should mostly be items of the same cluster.

python examples/matrix_factorization.py            # ends with `test RMSE: ... (baseline ...)`
python examples/matrix_factorization.py --smoke    # two epochs, for the test suite
"""

import argparse

import numpy as np
from tqdm import tqdm

import ember
from ember import nn
from ember.data import DataLoader, TensorDataset

USERS, ITEMS, CLUSTERS, RANK = 400, 200, 5, 4
OBSERVED = 0.15  # fraction of the matrix that has a rating
DIM = 8  # embedding width of the model


def synthetic_ratings(rng):
    """Ratings = 3 + user bias + item bias + user taste . item profile + noise, with items drawn
    around CLUSTERS centres. Returns the observed (user, item, rating) triples and each item's
    cluster."""
    cluster = rng.integers(CLUSTERS, size=ITEMS)
    centres = rng.standard_normal((CLUSTERS, RANK))
    items = centres[cluster] + 0.3 * rng.standard_normal((ITEMS, RANK))
    users = rng.standard_normal((USERS, RANK)) / np.sqrt(RANK)
    full = (
        3.0
        + 0.3 * rng.standard_normal((USERS, 1))
        + 0.3 * rng.standard_normal((1, ITEMS))
        + users @ items.T
        + 0.2 * rng.standard_normal((USERS, ITEMS))
    )
    user, item = np.nonzero(rng.random((USERS, ITEMS)) < OBSERVED)
    return (
        user.astype(np.int64),
        item.astype(np.int64),
        full[user, item].astype(np.float32),
        cluster,
    )


class MatrixFactorization(nn.Module):
    def __init__(self, users, items, dim, mean):
        super().__init__()
        self.user = nn.Embedding(users, dim)
        self.item = nn.Embedding(items, dim)
        self.user_bias = nn.Embedding(users, 1)
        self.item_bias = nn.Embedding(items, 1)
        for table in (self.user, self.item):
            table.weight.data[...] *= 0.1
        for table in (self.user_bias, self.item_bias):
            table.weight.data[...] = 0.0
        self.mean = mean

    def forward(self, user, item):
        dot = (self.user(user) * self.item(item)).sum(1)
        bias = (self.user_bias(user) + self.item_bias(item)).reshape(-1)
        return dot + bias + self.mean


def rmse(model, user, item, rating):
    with ember.no_grad():
        predicted = model(ember.tensor(user), ember.tensor(item)).numpy()
    return float(np.sqrt(np.mean((predicted - rating) ** 2)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--smoke", action="store_true", help="two epochs, for the tests")
    args = parser.parse_args()
    epochs = 2 if args.smoke else args.epochs

    ember.manual_seed(0)
    rng = np.random.default_rng(0)
    user, item, rating, cluster = synthetic_ratings(rng)
    test = rng.random(len(rating)) < 0.1
    train = ~test
    mean = float(rating[train].mean())
    print(
        f"{USERS} users x {ITEMS} items, {len(rating)} ratings observed "
        f"({train.sum()} train, {test.sum()} test)"
    )

    loader = DataLoader(
        TensorDataset(
            ember.tensor(user[train]), ember.tensor(item[train]), ember.tensor(rating[train])
        ),
        batch_size=256,
        shuffle=True,
    )
    model = MatrixFactorization(USERS, ITEMS, DIM, mean)
    optimizer = ember.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    loss_fn = nn.MSELoss()
    with tqdm(range(epochs), desc="training", unit="epoch") as bar:
        for _ in bar:
            for u, i, r in loader:
                loss = loss_fn(model(u, i), r)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            bar.set_postfix(mse=f"{loss.item():.3f}")

    baseline = float(np.sqrt(np.mean((rating[test] - mean) ** 2)))
    print(f"train RMSE: {rmse(model, user[train], item[train], rating[train]):.3f}")

    unit = nn.functional.normalize(model.item.weight.detach(), dim=1)
    similarity = (unit @ unit.T).numpy()  # the cosine similarity of every pair of items
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argsort(-similarity, axis=1)[:, :5]
    for query in range(5):
        names = ", ".join(f"{j} (c{cluster[j]})" for j in neighbours[query])
        print(f"item {query} (cluster {cluster[query]}): nearest {names}")
    same = float((cluster[neighbours] == cluster[:, None]).mean())
    print(f"nearest-5 neighbours in the same cluster: {same:.2f} (chance {1 / CLUSTERS:.2f})")
    print(
        f"test RMSE: {rmse(model, user[test], item[test], rating[test]):.3f} "
        f"(baseline, predicting the mean: {baseline:.3f})"
    )


if __name__ == "__main__":
    main()
