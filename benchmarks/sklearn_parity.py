"""NNClassifier/NNRegressor against scikit-learn's MLPClassifier/MLPRegressor: test scores with the
default parameters of both, over several seeds, on scikit-learn's small data sets.

    python benchmarks/sklearn_parity.py                 # docs/sklearn.md's table (5 seeds)
    python benchmarks/sklearn_parity.py --seeds 2 --only iris,wine
    python benchmarks/sklearn_parity.py --backend torch --device cuda   # ours on a GPU

For each data set and seed ``s``: ``train_test_split(test_size=0.25, random_state=s)``
(stratified for classification), then ``Estimator(random_state=s)`` with every other parameter
at its default, fitted on the training part and scored on the test part (accuracy, or R²).
"wine (scaled)" puts a ``StandardScaler`` in front; the others see the raw features.
ConvergenceWarnings (the defaults often stop at ``max_iter=200``) are counted, not shown.

The run passes when, for every data set, our mean score is at least scikit-learn's minus
``TOLERANCE`` (0.01), and ours is above chance (the majority class's share of the test set, or
R² = 0) wherever scikit-learn's is; the exit status is 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from anyarray_nn.sklearn import NNClassifier, NNRegressor  # noqa: E402

TOLERANCE = 0.01


@dataclass(frozen=True)
class Case:
    """One data set: its loader, whether it is a classification task, whether it is scaled."""

    name: str
    load: Callable[..., Any]
    classification: bool = True
    scaled: bool = False


CASES = [
    Case("iris", load_iris),
    Case("digits", load_digits),
    Case("wine", load_wine),
    Case("wine (scaled)", load_wine, scaled=True),
    Case("breast cancer", load_breast_cancer),
    Case("diabetes", load_diabetes, classification=False),
]


@dataclass
class Result:
    """Scores and non-converged fits of both estimators over the seeds of one case."""

    case: Case
    n_train: int = 0
    n_test: int = 0
    chance: list[float] = field(default_factory=list)
    scores: dict[str, list[float]] = field(default_factory=lambda: {"mlp": [], "ours": []})
    unconverged: dict[str, int] = field(default_factory=lambda: {"mlp": 0, "ours": 0})

    def mean(self, who: str) -> float:
        return float(np.mean(self.scores[who]))

    def ok(self) -> bool:
        """Within TOLERANCE of scikit-learn (or better), and above chance wherever it is."""
        close = self.mean("ours") >= self.mean("mlp") - TOLERANCE
        above = all(
            ours > chance or mlp <= chance
            for ours, mlp, chance in zip(
                self.scores["ours"], self.scores["mlp"], self.chance, strict=True
            )
        )
        return close and above


def _fit_score(est: Any, scaled: bool, split: tuple[np.ndarray, ...]) -> tuple[float, bool]:
    """``(test score, converged)``."""
    X_train, X_test, y_train, y_test = split
    model = make_pipeline(StandardScaler(), est) if scaled else est
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(X_train, y_train)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return float(model.score(X_test, y_test)), converged


def run_case(case: Case, seeds: list[int], ours_kw: dict[str, Any]) -> Result:
    X, y = case.load(return_X_y=True)
    result = Result(case)
    for seed in seeds:
        split = train_test_split(X, y, test_size=0.25, random_state=seed,
                                 stratify=y if case.classification else None)  # fmt: skip
        result.n_train, result.n_test = len(split[0]), len(split[1])
        y_test = split[3]
        if case.classification:
            result.chance.append(float(np.max(np.bincount(y_test)) / len(y_test)))
            pair = {"mlp": MLPClassifier(random_state=seed),
                    "ours": NNClassifier(random_state=seed, **ours_kw)}  # fmt: skip
        else:
            result.chance.append(0.0)
            pair = {"mlp": MLPRegressor(random_state=seed),
                    "ours": NNRegressor(random_state=seed, **ours_kw)}  # fmt: skip
        for who, est in pair.items():
            score, converged = _fit_score(est, case.scaled, split)
            result.scores[who].append(score)
            result.unconverged[who] += not converged
    return result


def table(results: list[Result], n_seeds: int) -> str:
    """The results as a Markdown table (times are left to benchmarks/run.py: on a shared
    machine they say more about the load than about the estimators)."""
    lines = [
        f"| data set (train/test rows) | MLP (mean ± sd over {n_seeds} seeds) | ours | ours - "
        "MLP | largest per-seed gap | chance | fits stopped by max_iter (MLP/ours) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        mlp, ours = np.asarray(r.scores["mlp"]), np.asarray(r.scores["ours"])
        metric = "accuracy" if r.case.classification else "R²"
        lines.append(
            f"| {r.case.name} ({r.n_train}/{r.n_test}), {metric} "
            f"| {mlp.mean():.4f} ± {mlp.std():.4f} | {ours.mean():.4f} ± {ours.std():.4f} "
            f"| {ours.mean() - mlp.mean():+.4f} | {np.max(np.abs(ours - mlp)):.1e} "
            f"| {np.mean(r.chance):.3f} | {r.unconverged['mlp']}/{r.unconverged['ours']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--only", default="", help="comma-separated data set names (prefixes)")
    parser.add_argument("--backend", default="numpy", help="our estimators' backend")
    parser.add_argument("--device", default=None, help="our estimators' device")
    parser.add_argument("--dtype", default=None, help="force our dtype (default: follow X)")
    args = parser.parse_args(argv)
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    cases = [c for c in CASES if not wanted or any(c.name.startswith(w) for w in wanted)]
    ours_kw = {"backend": args.backend, "device": args.device, "dtype": args.dtype}
    seeds = list(range(args.seeds))
    results = []
    for case in cases:
        results.append(run_case(case, seeds, ours_kw))
        print(f"{case.name}: done", file=sys.stderr, flush=True)
    print(table(results, len(seeds)))
    failed = [r.case.name for r in results if not r.ok()]
    if failed:
        print(f"\nFAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"\nEvery data set: within {TOLERANCE} of scikit-learn or better, above chance where "
          "it is.")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
