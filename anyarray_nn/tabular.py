"""Your own data from files: CSV, NumPy ``.npy``/``.npz`` and Parquet, as features and labels.

Host-side by design (NumPy only; Parquet needs the optional ``pyarrow``). Nothing is ever
unpickled. A file is opened as a :class:`Table`: its column names (``None`` when it has none)
and typed access to its columns. Features must be numbers; labels may be numbers or strings.
Every problem raises :class:`DataFileError`, a one-line message that names the file, the column
and the first bad line or row, with a ``hint`` that says how to fix it.

Formats, by extension:

- ``.csv`` (comma) and ``.tsv`` (tab), UTF-8, fields optionally quoted with ``"``. The first
  row is a header when none of its fields is a number (``header=True``/``False`` overrides).
  Columns are named by the header, or by position (0, 1, ...; negative from the end).
  ``skip_rows=N`` ignores the first N lines (scikit-learn's bundled CSVs start with a count line).
- ``.npy``: a 2-D array of numbers, rows by features. Its labels are a column of it (by
  position) or a second ``.npy`` file holding one label per row.
- ``.npz``: the array ``X`` (rows by features) and, as labels, another array of the file
  (``y`` by default) or a column of ``X``.
- ``.parquet`` (or ``.pq``): needs ``pyarrow`` (``pip install 'anyarray_nn[parquet]'``).
  Numeric and boolean columns are features; string or categorical columns can only be labels.

Predictions are written by :func:`write_predictions` as CSV (``-`` for standard output) or
``.npy``.
"""

from __future__ import annotations

import csv
import difflib
import math
import os
import re
import stat
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "INPUT_TYPES",
    "OUTPUT_TYPES",
    "DataFileError",
    "Table",
    "input_type",
    "is_data_file",
    "open_table",
    "output_type",
    "write_predictions",
]

#: Extension -> input format.
INPUT_TYPES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".npy": "npy",
    ".npz": "npz",
    ".parquet": "parquet",
    ".pq": "parquet",
}
#: Extension -> output format of predictions.
OUTPUT_TYPES = {".csv": "csv", ".npy": "npy"}
#: Feature cells that mean "no value" (compared case-insensitively, after stripping blanks).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-"})
#: Label cells that mean "no value" ("NA" or "None" may well be a class).
NO_LABEL = frozenset({"", "nan"})
_INT = re.compile(r"[+-]?\d+")
_ENCODE_HINT = (
    "encode such columns as numbers first, e.g. one-hot with pandas.get_dummies, or leave them "
    "out with --drop COLUMN; "
    "a label column is named with --target"
)
_MISSING_HINT = "fill in or drop the rows with missing values first, e.g. with pandas dropna"


class DataFileError(ValueError):
    """A data file that cannot be used as given; ``hint`` (or ``None``) says how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def is_data_file(name: str | os.PathLike[str]) -> bool:
    """Whether ``name`` ends in an extension this module reads (``.csv``, ``.npy``, ...)."""
    return Path(name).suffix.lower() in INPUT_TYPES


def input_type(path: str | os.PathLike[str]) -> str:
    """``"csv"``, ``"npy"``, ``"npz"`` or ``"parquet"``, by extension (else DataFileError)."""
    kind = INPUT_TYPES.get(Path(path).suffix.lower())
    if kind is None:
        raise DataFileError(
            f"cannot tell the format of {str(path)!r} from its extension",
            f"name it *{', *'.join(INPUT_TYPES)}",
        )
    return kind


def output_type(path: str | os.PathLike[str]) -> str:
    """``"csv"`` or ``"npy"``, by extension; ``-`` (standard output) is CSV."""
    if str(path) == "-":
        return "csv"
    kind = OUTPUT_TYPES.get(Path(path).suffix.lower())
    if kind is None:
        raise DataFileError(
            f"cannot tell the output format from {str(path)!r}",
            "name it *.csv or *.npy, or write - for CSV on standard output",
        )
    return kind


# -- the table interface ---------------------------------------------------------------------


class Table:
    """The columns of one data file: ``names`` (``None`` when unnamed) and ``n_columns``.

    :meth:`numeric` reads feature columns as one ``float64`` array; :meth:`labels` reads one
    column as numbers (``float64``) or strings. :meth:`column` turns a name or position into
    a column index. Subclasses implement the formats.
    """

    path: str
    names: list[str] | None
    n_columns: int
    #: Whether the first row was a header (CSV only; ``None`` for other formats).
    header: bool | None = None
    #: Whether the last column read by :meth:`labels` wrote its numbers with a decimal point or
    #: an exponent (``151.0``): measurements, not class codes. Known for CSV only.
    decimal_labels: bool = False

    def column(self, spec: str | int) -> int:
        """The index of the column named ``spec``, or at position ``spec`` (negative from the
        end); DataFileError if there is none."""
        if self.names is not None and str(spec) in self.names:
            if self.names.count(str(spec)) > 1:
                raise DataFileError(f"{self.path}: the column name {str(spec)!r} appears twice")
            return self.names.index(str(spec))
        text = str(spec).strip()
        if _INT.fullmatch(text):
            index = int(text)
            if -self.n_columns <= index < self.n_columns:
                return index % self.n_columns
            raise DataFileError(
                f"{self.path} has {self.n_columns} columns, so there is no column {index}",
                f"give a position from 0 to {self.n_columns - 1}, or -1 for the last",
            )
        raise DataFileError(f"{self.path} has no column {str(spec)!r}", self._columns_hint(spec))

    def _columns_hint(self, spec: str | int) -> str:
        """Every column name, and the closest ones to ``spec`` first ("did you mean ...?")."""
        if self.names is None:
            return (
                f"it has no header row: give a column position from 0 to {self.n_columns - 1}, "
                "or -1 for the last"
            )
        lowered = {name.lower(): name for name in self.names}
        close = difflib.get_close_matches(str(spec).lower(), list(lowered), n=3, cutoff=0.6)
        hint = f"its columns are {', '.join(self.names)}"
        if close:
            hint = f"did you mean {' or '.join(repr(lowered[c]) for c in close)}? {hint}"
        return hint

    def label(self, index: int) -> str:
        """How messages name column ``index``, after the word "column": ``'species'`` or ``4``."""
        return repr(self.names[index]) if self.names is not None else str(index)

    def numeric(self, columns: Sequence[int]) -> np.ndarray:
        """The ``columns`` as an ``(n_rows, len(columns))`` ``float64`` array of finite numbers."""
        raise NotImplementedError

    def labels(self, index: int) -> np.ndarray:
        """Column ``index``: ``float64`` if every value is a number, else strings (stripped)."""
        raise NotImplementedError

    def array(self, name: str) -> np.ndarray | None:
        """A named array stored beside the columns (``.npz`` only), or ``None``."""
        return None


def open_table(
    path: str | os.PathLike[str], header: bool | None = None, skip_rows: int = 0
) -> Table:
    """Open a data file by its extension; ``header`` (``None``: detect it) and ``skip_rows``
    (lines to ignore at the top) apply to CSV."""
    kind = input_type(path)
    check_regular_file(path)
    if kind == "csv":
        table: Table = CsvTable(str(path), header, skip_rows)
    elif skip_rows:
        raise DataFileError(f"--skip-rows applies to CSV files, not to {str(path)!r}")
    elif kind == "parquet":
        table = ParquetTable(str(path))
    else:
        table = ArrayTable(str(path))
    _check_unique_names(table)
    return table


def check_regular_file(path: str | os.PathLike[str], what: str = "data file") -> None:
    """DataFileError unless ``path`` is (a link to) a regular file: a FIFO would block forever
    in ``open()``, a device such as ``/dev/zero`` would be read without end."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataFileError(f"no such file: {str(path)!r}") from None
    except OSError as exc:
        raise DataFileError(f"{str(path)!r} cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise DataFileError(f"{str(path)!r} is a directory", f"give a {what}")
    if not stat.S_ISREG(mode):
        raise DataFileError(
            f"{str(path)!r} is not a regular file (a pipe, socket or device)",
            f"give a {what} saved on disk",
        )


def _check_unique_names(table: Table) -> None:
    """Columns are chosen by name, so two columns with one name would be read as the same."""
    if table.names is None:
        return
    seen: set[str] = set()
    for name in table.names:
        if name in seen:
            raise DataFileError(
                f"{table.path}: the column name {name!r} appears more than once",
                "give every column its own name",
            )
        seen.add(name)


# -- CSV -------------------------------------------------------------------------------------


def _missing(cell: str) -> str:
    return "is missing a value" if cell.lower() in MISSING else "has a non-finite value"


def _columns_are(labels: Sequence[str]) -> str:
    """``feature column 'a' is`` or ``feature columns 'a', 'b' are``."""
    if len(labels) == 1:
        return f"feature column {labels[0]} is"
    return f"feature columns {', '.join(labels)} are"  # e.g. 'color', 'city' or 3, 5


def _is_number(text: str) -> bool:
    """Whether NumPy reads ``text`` as a number (Python's ``float`` also takes ``1_000`` and
    non-ASCII digits, which NumPy's reader refuses)."""
    if not text.isascii() or "_" in text:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


#: Boolean cells read as numbers (compared case-insensitively): pandas writes ``True``/``False``.
BOOLEANS = {"true": 1.0, "false": 0.0}


def _number_or_boolean(cell: str) -> float:
    """A cell as a float: a number, or ``True``/``False`` as 1/0 (ValueError otherwise)."""
    text = cell.strip()
    value = BOOLEANS.get(text.lower())
    if value is not None:
        return value
    if not _is_number(text):
        raise ValueError(f"not a number: {cell!r}")
    return float(text)


def _undecodable_line(path: str) -> int:
    """The number of the first line of ``path`` that is not UTF-8."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


class CsvTable(Table):
    """A CSV (or, for ``.tsv``, tab-separated) file; read by NumPy's C parser, diagnosed row by
    row with the csv module when something is wrong."""

    def __init__(self, path: str, header: bool | None, skip_rows: int = 0) -> None:
        self.path = path
        self.delimiter = "\t" if path.lower().endswith(".tsv") else ","
        self.skip_rows = skip_rows
        first, second, self.skip = self._first_rows()
        self.first_line = self.skip  # the line number of the first row (header or data)
        if first is None:
            after = f" after its first {skip_rows} lines" if skip_rows else ""
            raise DataFileError(f"{path} is empty{after}", "give a file with one row per sample")
        self.header = not any(_is_number(f) for f in first) if header is None else header
        self.names = [f.strip() for f in first] if self.header else None
        self.n_columns = len(first)
        if self.header and second is None:
            raise DataFileError(f"{path} has a header row but no data rows")
        if not self.header:
            self.skip -= 1  # the first row is data: do not skip it
        self._check_row_lengths()

    def _records(self) -> Iterator[tuple[int, int, list[str]]]:
        """``(first line, last line, fields)`` of every row but empty lines (the rows NumPy's
        reader sees: a line of blanks or of empty fields is a row)."""
        with open(self.path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=self.delimiter)
            start = 1
            try:
                for row in reader:
                    if row and reader.line_num > self.skip_rows:
                        yield start, reader.line_num, row
                    start = reader.line_num + 1
            except csv.Error as exc:
                hint = f'a field runs on from line {start}: close its quote (") or remove it'
                if "field limit" in str(exc):
                    hint = "a field that long is not a number or a label: is this a CSV file?"
                raise DataFileError(
                    f"{self.path}: line {start} cannot be read ({exc})", hint
                ) from None
            except UnicodeDecodeError as exc:
                raise DataFileError(
                    f"{self.path}: line {_undecodable_line(self.path)} is not UTF-8 ({exc.reason}: "
                    f"byte {exc.object[exc.start : exc.start + 1]!r})",
                    "save the file as UTF-8 CSV",
                ) from None

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        """``(line number, fields)`` of every row (see :meth:`_records`)."""
        for start, _, row in self._records():
            yield start, row

    def _first_rows(self) -> tuple[list[str] | None, list[str] | None, int]:
        rows = self._records()
        first = next(rows, None)
        second = next(rows, None)
        rows.close()
        return (
            None if first is None else first[2],
            None if second is None else second[2],
            0 if first is None else first[1],  # lines up to and including the first row
        )

    def _check_row_lengths(self) -> None:
        what = "the header" if self.header else "the first row"
        for number, (start, end, row) in enumerate(self._records()):
            if len(row) != self.n_columns:
                hint = f'quote fields that contain "{self.delimiter}", like "New York, NY"'
                if number == 1:  # only the first row differs: a line before the data
                    hint = (
                        f"if line {self.first_line} is not part of the table (scikit-learn's "
                        f"bundled CSVs start with a line of counts), skip it with --skip-rows "
                        f"{self.first_line}"
                    )
                elif end > start:
                    hint = f'a quote (") opened on line {start} is not closed'
                elif not any(field.strip() for field in row):
                    hint = "delete the blank line"
                raise DataFileError(
                    f"{self.path}: line {start} has {len(row)} fields but {what} has "
                    f"{self.n_columns}",
                    hint,
                )

    def _loadtxt(self, columns: Sequence[int], dtype: Any) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NumPy's note about blank lines
            return np.loadtxt(
                self.path,
                delimiter=self.delimiter,
                skiprows=self.skip,
                usecols=list(columns),
                dtype=dtype,
                ndmin=2,
                comments=None,
                quotechar='"',
                encoding="utf-8-sig",
            )

    def numeric(self, columns: Sequence[int]) -> np.ndarray:
        try:
            X = self._loadtxt(columns, np.float64)
        except ValueError:
            X = self._with_booleans(columns)
        if X is None or not np.isfinite(X).all():
            self._diagnose(columns)
            raise DataFileError(f"{self.path}: cannot read the feature columns as numbers")
        return X

    def _with_booleans(self, columns: Sequence[int]) -> np.ndarray | None:
        """The columns read again, ``True``/``False`` (as pandas writes a boolean column, e.g.
        ``get_dummies``'s) as 1/0; None if some cell is neither a number nor a boolean."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return np.loadtxt(
                    self.path, delimiter=self.delimiter, skiprows=self.skip,
                    usecols=list(columns), dtype=np.float64, ndmin=2, comments=None,
                    quotechar='"', encoding="utf-8-sig", converters=_number_or_boolean,
                )  # fmt: skip
            except ValueError:
                return None

    def _data_rows(self) -> Iterator[tuple[int, list[str]]]:
        rows = self._rows()
        if self.header:
            next(rows, None)
        return rows

    def _diagnose(self, columns: Sequence[int]) -> None:
        """Raise the DataFileError that describes the first problem in ``columns``."""
        words: dict[int, tuple[int, str]] = {}  # column -> first (line, non-number)
        missing: tuple[int, int, str] | None = None
        for line, row in self._data_rows():
            for c in columns:
                cell = row[c].strip()
                if cell.lower() in MISSING or (_is_number(cell) and not math.isfinite(float(cell))):
                    missing = missing or (line, c, cell)
                elif c not in words and not _is_number(cell) and cell.lower() not in BOOLEANS:
                    words[c] = (line, cell)
        if words:
            self._raise_not_numeric(words)
        if missing is not None:
            line, c, cell = missing
            raise DataFileError(
                f"{self.path}: line {line}: column {self.label(c)} {_missing(cell)} ({cell!r})",
                _MISSING_HINT,
            )

    def _raise_not_numeric(self, words: dict[int, tuple[int, str]]) -> None:
        line, cell = min(words.values(), key=lambda found: found[0])  # the first, by line
        hint = _ENCODE_HINT
        if not self.header and line == self.skip + 1:
            hint += "; if the first line is a header, use --header yes"
        raise DataFileError(
            f"{self.path}: {_columns_are([self.label(c) for c in words])} not numeric "
            f"(line {line} has {cell!r})",
            hint,
        )

    def labels(self, index: int) -> np.ndarray:
        values = np.char.strip(self._loadtxt([index], str)[:, 0])
        bad = np.flatnonzero(np.isin(np.char.lower(values), list(NO_LABEL)))
        if bad.size:
            raise DataFileError(
                f"{self.path}: line {self._line_of(int(bad[0]))}: the label column "
                f"{self.label(index)} is empty ({str(values[bad[0]])!r})",
                "drop the rows without a label first",
            )
        row = _non_finite_number(values)
        if row is not None:
            raise DataFileError(
                f"{self.path}: line {self._line_of(row)}: the label column {self.label(index)} "
                f"holds {str(values[row])!r}, which is not a finite number",
                "fix or drop that row (a float64 label lies within +-1.8e308)",
            )
        labels = _numbers_or_strings(values)
        lowered = np.char.lower(values)
        self.decimal_labels = labels.dtype.kind == "f" and bool(
            np.any((np.char.find(lowered, ".") >= 0) | (np.char.find(lowered, "e") >= 0))
        )
        return labels

    def _line_of(self, row: int) -> int:
        """The line number of data row ``row`` (0-based)."""
        return next(line for i, (line, _) in enumerate(self._data_rows()) if i == row)


def _non_finite_number(values: np.ndarray) -> int | None:
    """The first row whose label is a number too large for float64 (or inf, nan), when every
    label is a number; else None (text labels are classes)."""
    try:
        with np.errstate(all="ignore"):
            numbers = values.astype(np.float64)
    except ValueError:
        return None
    bad = np.flatnonzero(~np.isfinite(numbers))
    return int(bad[0]) if bad.size else None


def _numbers_or_strings(values: np.ndarray) -> np.ndarray:
    """``float64`` when every string is a finite number, else the strings themselves."""
    try:
        numbers = values.astype(np.float64)
    except ValueError:
        return values
    return numbers if np.isfinite(numbers).all() else values


# -- NumPy arrays and Parquet ----------------------------------------------------------------


def _load_npy(path: str) -> np.ndarray | dict[str, np.ndarray]:
    """A ``.npy`` array, or every array of a ``.npz``; never unpickles."""
    try:
        _check_declared_sizes(path)
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataFileError(
                f"{path} holds Python objects (or is not a NumPy file), which are never unpickled",
                "save numbers, or labels as fixed-width strings: labels.astype(str)",
            ) from None
        raise DataFileError(f"{path} is not a readable NumPy file ({exc})") from None
    except (OSError, EOFError) as exc:  # a bad .npz is a BadZipFile, an OSError
        raise DataFileError(f"{path} is not a readable NumPy file ({exc})") from None


def _declared_bytes(handle: Any) -> int:
    """The bytes of data a ``.npy`` header declares (read from ``handle``, at the header)."""
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    return 0 if dtype.hasobject else math.prod(shape) * dtype.itemsize


def _check_declared_sizes(path: str) -> None:
    """Refuse a ``.npy`` (or ``.npz`` member) whose header declares more data than the file
    holds, before anything is allocated (NumPy would try to allocate it all first)."""
    with open(path, "rb") as handle:
        if handle.read(2) == b"PK":
            handle.seek(0)
            with zipfile.ZipFile(handle) as archive:
                for info in archive.infolist():
                    with archive.open(info) as member:
                        if _declared_bytes(member) > info.file_size:
                            _raise_too_big(path, info.filename)
            return
        handle.seek(0)
        declared = _declared_bytes(handle)
        if declared > os.fstat(handle.fileno()).st_size - handle.tell():
            _raise_too_big(path, None)


def _raise_too_big(path: str, member: str | None) -> None:
    where = path if member is None else f"{path} (array {member!r})"
    raise DataFileError(
        f"{where}: its header declares more data than the file holds (truncated or corrupted)",
        "save the array again with numpy.save or numpy.savez",
    )


def _check_labels(values: np.ndarray, where: str, name: str) -> np.ndarray:
    """1-D labels as ``float64`` numbers or strings; DataFileError for anything else."""
    if values.ndim != 1:
        raise DataFileError(f"{where}: {name} has shape {values.shape}; labels must be 1-D")
    if values.dtype.kind in "US":
        values = np.char.strip(values.astype(str))
        bad = np.flatnonzero(np.isin(np.char.lower(values), list(NO_LABEL)))
        if bad.size:
            raise DataFileError(f"{where}: {name} is empty in row {bad[0]}")
        return values
    if values.dtype.kind not in "biuf":
        raise DataFileError(f"{where}: {name} holds {values.dtype} values, not numbers or text")
    numbers = values.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(numbers))
    if bad.size:
        raise DataFileError(
            f"{where}: {name} is missing a value (or is not finite) in row {bad[0]}"
        )
    return numbers


def _finite_features(X: np.ndarray, where: str, label: Any) -> np.ndarray:
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        row, c = bad[0]
        raise DataFileError(
            f"{where}: row {row}: column {label(int(c))} is missing a value or not finite "
            f"({X[row, c]})",
            _MISSING_HINT,
        )
    return X


class ArrayTable(Table):
    """A ``.npy`` array (rows by features), or the array ``X`` of a ``.npz`` and its others."""

    def __init__(self, path: str) -> None:
        self.path, self.names = path, None
        arrays = _load_npy(path)
        if isinstance(arrays, np.ndarray):
            self.X, self.others = arrays, {}
        else:
            if "X" not in arrays:
                raise DataFileError(
                    f"{path} has no array named X (it has {', '.join(arrays) or 'none'})",
                    "save the features as X: np.savez(path, X=X, y=y)",
                )
            self.X = arrays.pop("X")
            self.others = arrays
        if self.X.ndim != 2:
            raise DataFileError(
                f"{path}: the features have shape {self.X.shape}; expected rows by features",
                "reshape to 2-D, e.g. X.reshape(len(X), -1)",
            )
        self.n_columns = self.X.shape[1]
        if self.X.shape[0] == 0:
            raise DataFileError(f"{path} has no rows", "give a file with one row per sample")

    def numeric(self, columns: Sequence[int]) -> np.ndarray:
        if self.X.dtype.kind not in "biuf":
            raise DataFileError(
                f"{self.path}: the features are {self.X.dtype} values, not numbers", _ENCODE_HINT
            )
        X = self.X[:, list(columns)].astype(np.float64)
        return _finite_features(X, self.path, self.label)

    def labels(self, index: int) -> np.ndarray:
        return _check_labels(self.X[:, index], self.path, f"column {index}")

    def array(self, name: str) -> np.ndarray | None:
        if name in self.others:
            return _check_labels(self.others[name], self.path, f"the array {name!r}")
        if name.lower().endswith(".npy"):
            if not Path(name).exists():
                raise DataFileError(f"no such labels file: {name!r}")
            check_regular_file(name, "labels file")
            loaded = _load_npy(name)
            if not isinstance(loaded, np.ndarray):
                raise DataFileError(f"{name!r} is not a .npy file")
            return _check_labels(loaded, name, "the labels")
        return None


class ParquetTable(Table):
    """A Parquet file, read with pyarrow (an optional dependency)."""

    def __init__(self, path: str) -> None:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataFileError(
                f"reading {path} needs pyarrow, which is not installed",
                "pip install 'anyarray_nn[parquet]' or pyarrow, or save the data as CSV",
            ) from None
        try:
            self.table = pq.read_table(path)
        except Exception as exc:  # pyarrow's ArrowInvalid and friends
            raise DataFileError(f"{path} is not a readable Parquet file ({exc})") from None
        self.path, self.names = path, list(self.table.column_names)
        self.n_columns = len(self.names)
        if self.table.num_rows == 0:
            raise DataFileError(f"{path} has no rows", "give a file with one row per sample")

    def _is_numeric(self, index: int) -> bool:
        import pyarrow as pa

        kind = self.table.column(index).type
        checks = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean)
        return any(check(kind) for check in (*checks, pa.types.is_decimal))

    def _column(self, index: int) -> np.ndarray:
        column = self.table.column(index)
        nulls = np.asarray(column.is_null())
        if nulls.any():
            raise DataFileError(
                f"{self.path}: row {int(np.argmax(nulls))}: column {self.label(index)} is null",
                _MISSING_HINT,
            )
        return np.asarray(column.to_numpy(zero_copy_only=False))

    def numeric(self, columns: Sequence[int]) -> np.ndarray:
        words = [c for c in columns if not self._is_numeric(c)]
        if words:
            raise DataFileError(
                f"{self.path}: {_columns_are([self.label(c) for c in words])} not numeric "
                f"({self.table.column(words[0]).type})",
                _ENCODE_HINT,
            )
        X = np.stack([self._column(c).astype(np.float64) for c in columns], axis=1)
        return _finite_features(X, self.path, lambda c: self.label(list(columns)[c]))

    def labels(self, index: int) -> np.ndarray:
        import pyarrow as pa

        kind = self.table.column(index).type
        if pa.types.is_nested(kind):
            raise DataFileError(
                f"{self.path}: the label column {self.label(index)} holds {kind} values, not "
                "one number or text per row",
                "give one label per row",
            )
        values = self._column(index)
        if not self._is_numeric(index):
            values = values.astype(str)
        return _check_labels(values, self.path, f"the label column {self.label(index)}")


# -- writing predictions ---------------------------------------------------------------------


def _cell(value: Any) -> str:
    """Exact text of one value: ``repr`` of floats (reads back to the same number)."""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def write_predictions(path: str, values: np.ndarray, columns: Sequence[str]) -> None:
    """Write ``values`` (1-D: one per row; 2-D: one column per name in ``columns``) to ``path``:
    CSV with a header row (``-``: standard output), or ``.npy``; atomically for files."""
    kind = output_type(path)
    if path == "-":
        _write_csv(sys.stdout, values, columns)
        return
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        if kind == "csv":
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
                _write_csv(handle, values, columns)
        else:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, values, allow_pickle=False)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_csv(handle: Any, values: np.ndarray, columns: Sequence[str]) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(columns)
    rows = values[:, None] if values.ndim == 1 else values
    for row in rows.tolist():
        writer.writerow([_cell(v) for v in row])
