"""The kNN mutual-information estimator (Ross 2014) against scikit-learn and known-MI Gaussian cases."""

import numpy as np
import pytest
import torch
from sklearn.feature_selection import mutual_info_classif

from compendium.graphs.gsl.mi import convolved, gaussian_mixture_mi, mi_knn, mi_per_feature


def _two_gaussians(n, means, sds, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    means = np.asarray(means, float).reshape(2, -1)
    x = means[y] + np.asarray(sds, float)[y, None] * rng.standard_normal((n, means.shape[1]))
    return x, y


def test_one_column_equals_scikit_learn():
    x, y = _two_gaussians(1500, [0.0, 1.2], [1.0, 1.0], seed=1)
    ours = mi_knn(x[:, 0], y, k=3, jitter=False)
    ref = mutual_info_classif(x, y, n_neighbors=3, random_state=0)[0]
    assert ours == pytest.approx(ref, abs=1e-9)
    ours5 = mi_knn(x, y, k=5, jitter=False)
    assert ours5 == pytest.approx(mutual_info_classif(x, y, n_neighbors=5, random_state=0)[0], abs=1e-9)


def test_reference_values():
    # Two far-apart classes: I = H(Y) = log 2; identical classes: I = 0.
    assert gaussian_mixture_mi([0.0, 50.0], [1.0, 1.0]) == pytest.approx(np.log(2), abs=1e-6)
    assert gaussian_mixture_mi([0.0, 0.0], [1.0, 1.0]) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("means, sds", [
    ([[0.0], [1.5]], [1.0, 1.0]),            # 1-D, equal variances
    ([[-1.0, 0.0], [1.0, 0.0]], [1.0, 5 ** 0.5]),  # CSBM-H's classes (variances 1 and 5)
    ([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]], [1.0, 1.0]),  # 3-D
])
def test_known_mi_gaussian_mixtures(means, sds):
    truth = gaussian_mixture_mi(means, sds, num_samples=200_000)
    x, y = _two_gaussians(3000, means, sds, seed=2)
    assert mi_knn(x, y, k=3) == pytest.approx(truth, abs=0.03)


def test_separated_and_independent():
    x, y = _two_gaussians(1000, [[0.0, 0.0], [30.0, 0.0]], [1.0, 1.0], seed=3)
    assert mi_knn(x, y) == pytest.approx(np.log(2), abs=0.02)
    rng = np.random.default_rng(4)
    assert mi_knn(rng.standard_normal((1000, 3)), rng.integers(0, 3, 1000)) < 0.02


def test_invariant_to_scale_and_shift_and_torch_input():
    x, y = _two_gaussians(800, [[0.0, 0.0], [1.0, 0.5]], [1.0, 1.0], seed=5)
    a = mi_knn(x, y)
    assert mi_knn(3.0 * x + 7.0, y) == pytest.approx(a, abs=1e-6)
    assert mi_knn(torch.as_tensor(x), torch.as_tensor(y)) == pytest.approx(a, abs=1e-9)


def test_singleton_class_is_ignored_and_shapes_checked():
    x, y = _two_gaussians(300, [0.0, 2.0], [1.0, 1.0], seed=6)
    y2 = y.copy()
    y2[0] = 7  # a class with one sample
    assert mi_knn(np.delete(x, 0, 0), np.delete(y, 0)) == pytest.approx(mi_knn(x, y2), abs=1e-6)
    with pytest.raises(ValueError):
        mi_knn(x[:10], y[:9])


def test_convolution_on_a_homophilous_graph_raises_mi():
    # Two cliques of one class each: averaging over the clique removes the noise.
    x, y = _two_gaussians(400, [0.0, 1.0], [1.0, 1.0], seed=7)
    order = np.argsort(y)
    x, y = x[order], y[order]
    n0 = int((y == 0).sum())
    idx0, idx1 = np.arange(n0), np.arange(n0, len(y))
    rng = np.random.default_rng(8)
    edges = [(a, b) for grp in (idx0, idx1) for a in grp for b in rng.choice(grp, 10, replace=False) if a != b]
    ei = torch.as_tensor(np.array(edges).T, dtype=torch.long)
    xa = convolved(torch.as_tensor(x, dtype=torch.float32), ei)
    assert mi_knn(xa, y) > mi_knn(x, y) + 0.2
    assert mi_per_feature(x, y) == pytest.approx(mi_knn(x[:, 0], y, random_state=0), abs=0.01)
