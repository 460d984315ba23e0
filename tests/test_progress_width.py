"""The progress bar of fit at 120 columns keeps every metric of the epoch on its line."""

from __future__ import annotations

import functools
import io

import pytest

import anyarray_nn as ann
from anyarray_nn import progress
from anyarray_nn.datasets import load_digits


def test_a_finished_epoch_shows_val_accuracy_at_120_columns(monkeypatch):
    tqdm = pytest.importorskip("tqdm").tqdm
    buffer = io.StringIO()
    narrow = functools.partial(tqdm, file=buffer, ncols=120)

    def start(self, epoch, total_epochs):  # the same bar, drawn into a 120-column buffer
        self.bar = narrow(total=self.n_batches, desc=f"epoch {epoch}/{total_epochs}", unit="batch")

    monkeypatch.setattr(progress.Progress, "start", start)
    X_train, _, y_train, _ = load_digits(split=True)
    net = ann.NN([64, 16, 10], backend="numpy", seed=0)
    net.fit(X_train, y_train, epochs=2, batch_size=64, validation_split=0.2, verbose=1)
    finished = [
        part for part in buffer.getvalue().replace("\n", "\r").split("\r") if "2/2:" in part
    ]
    last = finished[-1]
    assert len(last) <= 120 and "val_accuracy" in last and last.rstrip().endswith("]"), last
