"""What a model file records about how ``anyarray-nn train`` made it (in ``NN.metadata``), and
the data ``evaluate`` and ``predict`` derive from that record.

The record holds the data (a dataset, or a file with its SHA-256, label column and header),
the split (test size and seed), the task, the features (count and names), the class labels
and the feature scaling, so that ``evaluate MODEL`` alone re-evaluates on the same held-out
split and ``predict`` turns the rows of a file into labels the way training saw them.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import tabular
from .common import PROG, UsageError
from .data import (
    DATASETS,
    FILE,
    Data,
    DataSpec,
    ReadOptions,
    Scaler,
    feature_columns,
    file_digest,
    load_source,
    prepare,
)

TRAINED_WITH = f"{PROG} train"


def make_record(data: Data, args: argparse.Namespace) -> dict[str, Any]:
    """The JSON-able record of how ``train`` made a model from ``data`` (for ``net.metadata``)."""
    source = data.source
    assert source is not None
    return {
        "trained_with": TRAINED_WITH,
        "data": source.record,
        "split": {"test_size": args.test_size, "seed": args.data_seed, "limit": args.limit},
        "task": "regression" if data.regression else "classification",
        "n_features": data.n_features,
        "feature_names": source.feature_names,
        "target": source.target,
        "classes": data.classes or None,
        "class_names": data.class_names or None,
        "scaler": None if data.scaler is None else data.scaler.to_json(),
    }


@dataclass
class Record:
    """A model's record, read back from ``net.metadata``."""

    raw: dict[str, Any]

    @classmethod
    def of(cls, metadata: dict[str, Any], model: str = "the model") -> Record | None:
        """The record in ``metadata``, or None for a model not saved by ``train``; a
        UsageError naming the field when the record is malformed."""
        if metadata.get("trained_with") != TRAINED_WITH:
            return None
        check_record(metadata, model)
        return cls(metadata)

    @property
    def spec(self) -> DataSpec:
        """The recorded data as ``--data`` would name it."""
        data = self.raw["data"]
        if "file" in data:
            return DataSpec(FILE, data["file"])
        return DataSpec(data["dataset"], data.get("dir"))

    def matches(self, spec: DataSpec) -> bool:
        """Whether ``spec`` is the data this model was trained on (a file: the same bytes)."""
        data = self.raw["data"]
        if spec.is_file:
            path = Path(str(spec.path))
            same = "file" in data and path.is_file() and file_digest(str(path)) == data["sha256"]
            return same and not self.changed_labels()
        directory = None if spec.path is None else str(Path(spec.path).resolve())
        return data.get("dataset") == spec.name and data.get("dir") == directory

    def changed_labels(self) -> str | None:
        """The recorded labels file when it is missing or its bytes changed, else None."""
        data = self.raw["data"]
        target = data.get("target")
        if "target_sha256" not in data or not isinstance(target, str):
            return None
        if not Path(target).is_file() or file_digest(target) != data["target_sha256"]:
            return target
        return None

    def options(self) -> ReadOptions:
        """The recorded split, label column, header and task."""
        data, split = self.raw["data"], self.raw.get("split") or {}
        return ReadOptions(
            test_size=split.get("test_size", 0.2),
            data_seed=split.get("seed", 0),
            n_samples=data.get("n_samples", 1000),
            target=data.get("target"),
            header=data.get("header"),
            task=self.raw.get("task", "auto"),
            skip_rows=self.read.get("skip_rows", 0),
            select=self.read.get("features"),
            drop=self.read.get("drop"),
        )

    @property
    def read(self) -> dict[str, Any]:
        """How train was told to read its file (``--header``, ``--skip-rows``): the defaults
        for any file evaluate and predict read."""
        return dict(self.raw["data"].get("read") or {})

    @property
    def scaler(self) -> Scaler | None:
        """The feature scaling the model was trained with."""
        return Scaler.from_json(self.raw.get("scaler"))

    @property
    def classes(self) -> list[Any]:
        """The label of each class index, as written in the data."""
        return list(self.raw.get("classes") or [])

    @property
    def class_names(self) -> list[str]:
        """How reports name the classes."""
        return list(self.raw.get("class_names") or map(str, self.classes))

    @property
    def feature_names(self) -> list[str] | None:
        """The feature columns' names, in order (None for unnamed columns)."""
        return self.raw.get("feature_names")

    @property
    def target(self) -> str | None:
        """The label column (a name, or a position for files without a header)."""
        return self.raw.get("target")


# -- validation of a record read from a file ------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(value: Any) -> bool:
    """A number, or a flat list of numbers (a scaler's mean or scale)."""
    if isinstance(value, list):
        return all(_is_number(v) for v in value)
    return _is_number(value)


def _optional_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _str_list(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _check_data_field(data: Any, bad: Any) -> None:
    if not isinstance(data, dict):
        bad("data", "is not an object")
    if "file" in data:
        if not isinstance(data["file"], str):
            bad("data.file", "is not a file name")
        digest = data.get("sha256")
        if not isinstance(digest, str) or len(digest) != 64:
            bad("data.sha256", "is not a SHA-256 in hex")
        if not _optional_str(data.get("target")) or data.get("header") not in (None, True, False):
            bad("data.target or data.header", "has the wrong type")
        return
    name = data.get("dataset")
    if not isinstance(name, str):
        bad("data", "names neither a file nor a dataset")
    if name not in DATASETS:
        bad(
            "data.dataset",
            f"is {name!r}, a dataset this version does not know (a newer anyarray_nn wrote "
            "the file: upgrade anyarray_nn, or pass --data)",
        )
    if not _optional_str(data.get("dir")):
        bad("data.dir", "is not a directory name")
    n = data.get("n_samples", 1)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        bad("data.n_samples", "is not a whole number >= 1")


def _check_split_field(split: Any, bad: Any) -> None:
    if split is None:
        return
    if not isinstance(split, dict):
        bad("split", "is not an object")
    size = split.get("test_size", 0.2)
    if not _is_number(size) or not 0 < size < 1:
        bad("split.test_size", f"is {size!r}, not a number between 0 and 1")
    for key in ("seed", "limit"):
        value = split.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            bad(f"split.{key}", f"is {value!r}, not a whole number")


def check_record(raw: dict[str, Any], model: str) -> None:
    """UsageError naming the first field of a training record that is missing or of the wrong
    type (the file's checksum only proves it was not corrupted, not that it is well formed)."""

    def bad(name: str, problem: str) -> None:
        raise UsageError(
            f"{model}: the training record in its metadata is malformed: {name} {problem}",
            "pass --data (and --target) to use the model without its record",
        )

    _check_data_field(raw.get("data"), bad)
    _check_read_field((raw.get("data") or {}).get("read"), bad)
    _check_split_field(raw.get("split"), bad)
    if raw.get("task", "auto") not in ("classification", "regression", "auto"):
        bad("task", f"is {raw.get('task')!r}")
    n = raw.get("n_features")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        bad("n_features", f"is {n!r}, not a whole number >= 1")
    if not _str_list(raw.get("feature_names")) or not _str_list(raw.get("class_names")):
        bad("feature_names or class_names", "is not a list of names")
    classes = raw.get("classes")
    if classes is not None and not (
        isinstance(classes, list) and all(isinstance(c, (str, int, float)) for c in classes)
    ):
        bad("classes", "is not a list of labels")
    if not _optional_str(raw.get("target")):
        bad("target", "is not a column name")
    scaler = raw.get("scaler")
    if scaler is not None and not (
        isinstance(scaler, dict) and _numbers(scaler.get("mean")) and _numbers(scaler.get("scale"))
    ):
        bad("scaler", "lacks a numeric mean and scale")


def _check_read_field(read: Any, bad: Any) -> None:
    """How the data file was read (``--header``, ``--skip-rows``), when recorded."""
    if read is None:
        return
    if not isinstance(read, dict):
        bad("data.read", "is not a mapping")
    if read.get("header") not in (None, True, False):
        bad("data.read.header", f"is {read.get('header')!r}, not true, false or null")
    skip = read.get("skip_rows", 0)
    if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
        bad("data.read.skip_rows", f"is {skip!r}, not a whole number >= 0")
    for name in ("features", "drop"):
        if read.get(name) is not None and not _str_list(read.get(name)):
            bad(f"data.read.{name}", "is not a list of column names or positions")


def _given(args: argparse.Namespace, name: str) -> Any:
    return getattr(args, name, None)


def _read_options(args: argparse.Namespace, base: ReadOptions) -> ReadOptions:
    """``base`` with whatever the command line gives instead."""
    opts = ReadOptions(**vars(base))
    for name in ("test_size", "data_seed", "n_samples", "target", "header", "skip_rows"):
        if _given(args, name) is not None:
            setattr(opts, name, _given(args, name))
    return opts


def evaluation_data(args: argparse.Namespace, record: Record | None, model: str) -> Data:
    """The data ``evaluate`` scores: ``--data``, else the data the model was trained on; the
    held-out split when it is that data (or a built-in set), else every row of the file."""
    if args.data is None:
        if record is None:
            raise UsageError(
                f"{model} does not record the data it was trained on (it was not saved by "
                f"'{TRAINED_WITH} --save')",
                "pass --data",
            )
        spec, same = record.spec, True
        _check_unchanged(record, model)
    else:
        spec = args.data
        same = record is not None and record.matches(spec)
    if not spec.is_file and (args.target, args.header, args.skip_rows) != (None, None, None):
        raise UsageError(f"--target, --header and --skip-rows apply to --data FILE, not to {spec}")
    base = record.options() if same and record is not None else ReadOptions()
    if record is not None:  # a new file: read alike; the same label column, task and features
        if not same:
            base.header = record.read.get("header")
            base.skip_rows = record.read.get("skip_rows", 0)
        base.target = base.target or record.target
        base.task = record.options().task
        base.features = record.feature_names
        base.select, base.drop = record.options().select, record.options().drop
    with recorded_skip_named(args, record, spec.path, "evaluate", note=not same):
        source = load_source(spec, _read_options(args, base), split=same or not spec.is_file)
    if record is None:  # saved by net.save: the dataset's own scaling and classes
        return prepare(source, source.scaler, source.classes, source.class_names)
    return prepare(source, record.scaler, record.classes, record.class_names)


def _check_unchanged(record: Record, model: str) -> None:
    data = record.raw["data"]
    if "file" not in data:
        return
    path = data["file"]
    if not Path(path).is_file():
        raise UsageError(
            f"{model} was trained on {path}, which is not there any more", "pass --data"
        )
    if file_digest(path) != data["sha256"]:
        print(
            f"{PROG} evaluate: warning: {path} has changed since {model} was trained on it, so "
            "its held-out split may now hold training rows",
            file=sys.stderr,
        )
    labels = record.changed_labels()
    if labels is not None:
        raise UsageError(
            f"{model} was trained with the labels in {labels}, which is missing or has changed "
            "since",
            "pass --data and --target to evaluate on the labels as they are now",
        )


def prediction_features(args: argparse.Namespace, record: Record | None, net: Any) -> np.ndarray:
    """The rows of ``--data``, as the model's features (scaled as in training)."""
    read = {} if record is None else record.read
    header = args.header if args.header is not None else read.get("header")
    skip_rows = args.skip_rows if args.skip_rows is not None else read.get("skip_rows", 0)
    same = record is not None and record.matches(args.data)
    with recorded_skip_named(args, record, args.data.path, "predict", note=not same):
        table = tabular.open_table(str(args.data.path), header, skip_rows)
        columns = _prediction_columns(table, record, net.n_features, args)
        X = table.numeric(columns)
    scaler = None if record is None else record.scaler
    return X if scaler is None else scaler(X)


@contextlib.contextmanager
def recorded_skip_named(
    args: argparse.Namespace, record: Record | None, path: Any, command: str, note: bool
) -> Iterator[None]:
    """Reading ``path`` with the ``--skip-rows`` recorded in the model (none given on the command
    line): say so on stderr when ``note`` (a file other than the training file), and name the
    recorded option, and how to override it, in any error reading the file."""
    skip = 0 if record is None or args.skip_rows is not None else record.read.get("skip_rows", 0)
    if not skip:
        yield
        return
    told = (
        f"the model was trained with --skip-rows {skip}, so {command} skipped the first {skip} "
        f"line(s) of {path} too"
    )
    try:
        yield
    except (UsageError, tabular.DataFileError) as exc:
        fix = f"{told}: pass --skip-rows 0 (or the right count) if this file has no such lines"
        exc.hint = f"{exc.hint}; {fix}" if exc.hint else fix
        raise
    if note:  # read without an error: still say which lines were left out
        print(
            f"{PROG} {command}: note: {told}; pass --skip-rows 0 to read every line",
            file=sys.stderr,
        )


def _column_or_none(table: tabular.Table, spec: str | None) -> int | None:
    """The column ``spec`` names in ``table``, or None (no label column there)."""
    if spec is None:
        return None
    try:
        return table.column(spec)
    except tabular.DataFileError:
        return None


def _prediction_columns(
    table: tabular.Table, record: Record | None, n_features: int, args: argparse.Namespace
) -> list[int]:
    """Feature columns by name when both the file and the model have names, else by position;
    the label column may be there too and is ignored."""
    target = args.target or (None if record is None else record.target)
    if record is not None and (record.read.get("features") or record.read.get("drop")):
        opts = record.options()  # train's --features / --drop: the same columns
        for skip in dict.fromkeys((_column_or_none(table, target), None)):  # label there or not
            columns = feature_columns(table, record.feature_names, skip, target, opts)
            if len(columns) == n_features:
                return columns
    if table.names is not None and record is not None and record.feature_names is not None:
        return feature_columns(table, record.feature_names, None, target)
    if table.n_columns == n_features:
        return list(range(n_features))
    if target is not None and table.n_columns == n_features + 1:
        try:
            skip = table.column(target)
        except tabular.DataFileError:
            skip = None
        if skip is not None:
            return [c for c in range(table.n_columns) if c != skip]
    raise UsageError(
        f"{table.path} has {table.n_columns} columns but {args.model} takes {n_features} features",
        "give the feature columns, and at most the label column (named by --target)",
    )
