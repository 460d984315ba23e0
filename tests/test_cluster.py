"""Hyper-parameter search across a cluster: GridSearchCV over NNClassifier under joblib's Dask
backend, on a LocalCluster of two worker processes, finds what the same search finds in one
process (the reference), score for score."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from anyarray_nn import NNClassifier

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="dask.distributed missing (pip install 'anyarray_nn[cluster]')",
)


def _search(n_jobs: int) -> GridSearchCV:
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(
        StandardScaler(),
        NNClassifier((8,), solver="lbfgs", max_iter=200, random_state=0),  # converges: no warning
    )
    grid = {"nnclassifier__alpha": [1e-4, 1e-1], "nnclassifier__hidden_layer_sizes": [(4,), (8,)]}
    return GridSearchCV(pipe, grid, cv=3, n_jobs=n_jobs).fit(X, y)


def test_grid_search_on_a_dask_cluster_equals_one_process():
    import joblib
    from dask.distributed import Client, LocalCluster

    reference = _search(n_jobs=1)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
        joblib.parallel_backend("dask"),
    ):
        searched = _search(n_jobs=-1)
        workers = client.scheduler_info()["workers"]
    assert len(workers) == 2
    assert searched.best_params_ == reference.best_params_
    np.testing.assert_allclose(
        searched.cv_results_["mean_test_score"], reference.cv_results_["mean_test_score"]
    )
    assert searched.best_score_ > 0.9
