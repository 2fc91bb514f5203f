"""Files of numbers: CSV tables (with a header) and NumPy ``.npy`` arrays.

CSV files are read with the standard ``csv`` module, so there is no pandas dependency. Row
numbers in messages count lines of the file as a spreadsheet does: the header is row 1, the
first data row is row 2. Every problem is reported as a one-line DataError that names the
file, the row and the column where it applies, and what to do.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import DataError


@dataclass
class Table:
    """Numeric features of a CSV file, plus its label column encoded as class indices."""

    x: np.ndarray  # float64 (N, D)
    columns: list[str]  # feature column names, in the order of x's columns
    labels: Optional[np.ndarray]  # int64 (N,) or None
    class_names: Optional[list[str]]


def read_csv_cells(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows (as strings) and each row's line number; checks the file's structure."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")  # tolerate the byte-order mark some spreadsheets write
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path.name} row {line} is not UTF-8 text (byte 0x{data[exc.start]:02x}); "
            "save the file as UTF-8 CSV"
        ) from None
    if not text.strip():
        raise DataError(f"{path.name} is empty; a CSV file needs a header row and at least 2 data rows")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[list[str]] = []
    lines: list[int] = []
    header: Optional[list[str]] = None
    try:
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue  # blank lines carry nothing
            if header is None:
                header = [name.strip() for name in row]
                _check_header(path, header)
                continue
            if len(row) != len(header):
                raise DataError(
                    f"{path.name} row {reader.line_num} has {len(row)} values but the header has "
                    f"{len(header)} columns; fix or remove that row"
                )
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise DataError(f"{path.name} row {reader.line_num} is not valid CSV: {exc}") from None
    if header is None:  # only separators and blanks, e.g. ",,,"
        raise DataError(f"{path.name} holds no header row (only empty cells); a CSV file needs a header and at least 2 data rows")
    if not rows:
        raise DataError(f"{path.name} has a header but no data rows; a table needs at least 2 rows")
    if len(rows) < 2:
        raise DataError(f"{path.name} has only 1 data row; a table needs at least 2 rows")
    return header, rows, lines


def _check_header(path: Path, header: list[str]) -> None:
    for i, name in enumerate(header):
        if not name:
            raise DataError(
                f"{path.name} header: column {i + 1} has no name; the first row must name every column"
            )
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"{path.name} header: column name {name!r} appears twice; names must be unique")
        seen.add(name)


def read_csv_table(
    path: Path,
    label_column: Optional[str] = None,
    columns: Optional[Sequence[str]] = None,
    class_names: Optional[Sequence[str]] = None,
    require_label: bool = True,
) -> Table:
    """Read a CSV file into numeric features and (optional) labels.

    ``columns`` selects and orders the feature columns (as stored at training time; extra
    columns in the file are ignored); by default every column except ``label_column``.
    ``class_names`` fixes the label -> index mapping; by default the sorted distinct labels.
    With ``require_label=False`` a missing ``label_column`` gives ``labels=None``.
    """
    header, rows, lines = read_csv_cells(path)
    index = {name: j for j, name in enumerate(header)}
    if label_column is not None and label_column not in index:
        if require_label:
            raise DataError(
                f"label column {label_column!r} is not in {path.name}; its columns are {', '.join(header)}"
            )
        label_column = None
    if columns is None:
        columns = [name for name in header if name != label_column]
    else:
        absent = [name for name in columns if name not in index]
        if absent:
            raise DataError(
                f"{path.name} lacks the column(s) {', '.join(map(repr, absent))} the model was trained on; "
                f"its columns are {', '.join(header)}"
            )
    if not columns:
        raise DataError(f"{path.name} has no feature columns besides the label column {label_column!r}")
    x = cells_to_floats(path, header, rows, lines, [index[c] for c in columns])
    labels = names = None
    if label_column is not None:
        values = [row[index[label_column]].strip() for row in rows]
        labels, names = encode_labels(values, lines, path, label_column, class_names)
    return Table(x=x, columns=list(columns), labels=labels, class_names=names)


def cells_to_floats(path: Path, header: list[str], rows: list[list[str]], lines: list[int],
                    col_idx: list[int]) -> np.ndarray:
    """Convert the chosen columns to float64; locate the first bad cell when that fails."""
    cells = [[row[j] for j in col_idx] for row in rows]
    try:
        x = np.array(cells, dtype=np.float64)  # numpy parses the strings, much faster than a loop
    except ValueError:
        for row, line in zip(cells, lines):
            for value, j in zip(row, col_idx):
                try:
                    float(value)
                except ValueError:
                    where = f"{path.name} row {line}, column {header[j]!r}"
                    if not value.strip():
                        raise DataError(f"{where} is empty (a missing value); impute it or drop the row") from None
                    if value.strip().lower() in MISSING_MARKERS:
                        raise DataError(
                            f"{where}: {value.strip()!r} marks a missing value; impute it or drop the row"
                        ) from None
                    hint = _separator_hint(header)
                    raise DataError(
                        f"{where}: {value!r} is not a number; tables must be numeric "
                        f"(one-hot encode categories, or name a label column with data.label_column){hint}"
                    ) from None
        raise  # pragma: no cover - numpy and float() disagree only on exotic input
    bad = ~np.isfinite(x)
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise DataError(
            f"{path.name} row {lines[i]}, column {header[col_idx[k]]!r} is {cells[i][k].strip()!r} "
            f"(not finite); impute the missing values or drop those rows ({_cells(bad)} in all)"
        )
    return x.reshape(len(rows), len(col_idx))


# Cells that mean "no value" besides an empty one and NaN: refused in training data (with a
# message saying so), read as NaN by read_csv_with_missing for completion.
MISSING_MARKERS = frozenset({"na", "n/a", "null", "none", "?", "-", "missing"})


def _separator_hint(header: list[str]) -> str:
    if len(header) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs")):
            if sep in header[0]:
                return f"; the file seems to use {name} as separator but vaekit reads comma-separated files"
    return ""


def encode_labels(
    values: list[str], lines: list[int], path: Path, column: str,
    class_names: Optional[Sequence[str]] = None,
) -> tuple[np.ndarray, list[str]]:
    """Map label strings to indices. New class names are sorted (numerically when all are numbers)."""
    for value, line in zip(values, lines):
        if not value:
            raise DataError(f"{path.name} row {line}, column {column!r}: the label is empty; fill it in or drop the row")
    if class_names is None:
        distinct = set(values)
        try:
            class_names = sorted(distinct, key=float)
        except ValueError:
            class_names = sorted(distinct)
    lookup = {name: i for i, name in enumerate(class_names)}
    for value, line in zip(values, lines):
        if value not in lookup:
            raise DataError(
                f"{path.name} row {line}, column {column!r}: label {value!r} is not one of the "
                f"classes the model knows ({', '.join(class_names)})"
            )
    return np.array([lookup[v] for v in values], dtype=np.int64), list(class_names)


def read_npy(path: Path) -> np.ndarray:
    """Load a ``.npy`` array of numbers, memory-mapped, never unpickling anything."""
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as exc:
        if "object" in str(exc).lower() or "pickle" in str(exc).lower():
            raise DataError(
                f"{path.name} holds Python objects, which vaekit never unpickles; save a numeric array "
                "(e.g. np.save(path, x.astype('float32')))"
            ) from None
        raise DataError(f"{path.name} is not a valid .npy file ({str(exc).splitlines()[0]})") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path} as a .npy file ({exc}); it may be truncated") from None
    if not isinstance(arr, np.ndarray):  # np.load returns NpzFile for zip archives
        raise DataError(f"{path.name} is an .npz archive, not a .npy array; save one array with np.save")
    if arr.dtype.kind not in "biuf":
        raise DataError(
            f"{path.name} has dtype {arr.dtype}; vaekit needs numbers (bool, integer or float), "
            "not strings, complex numbers or records"
        )
    if arr.ndim < 2 or arr.ndim > 4:
        raise DataError(
            f"{path.name} has shape {arr.shape}; expected (N, D) for a table, (N, H, W) or (N, C, H, W) "
            "for images" + ("; use x.reshape(-1, 1) for a single feature" if arr.ndim == 1 else "")
        )
    if arr.shape[0] == 0 or any(s == 0 for s in arr.shape[1:]):
        raise DataError(f"{path.name} has shape {arr.shape}, which holds no values")
    return arr


def _cells(bad: np.ndarray) -> str:
    n = int(bad.sum())
    return f"{n} non-finite cell" + ("s" if n > 1 else "")


def check_finite_table(x: np.ndarray, name: str, columns: Sequence[str], row_offset: int = 0,
                       whole: bool = True) -> None:
    """DataError naming the first NaN/inf cell of a (N, D) array; ``x`` may be the block of a
    file's rows that starts at row ``row_offset`` (``whole=False``: the count is the block's)."""
    bad = ~np.isfinite(x)
    if bad.any():
        i, k = np.argwhere(bad)[0]
        where = "in all" if whole else f"in rows {row_offset}..{row_offset + len(x) - 1}"
        raise DataError(
            f"{name} row {i + row_offset}, column {columns[k]!r} is {x[i, k]} (not finite); impute the missing "
            f"values or drop those rows ({_cells(bad)} {where})"
        )


def read_csv_with_missing(path: Path, columns: Optional[Sequence[str]] = None,
                          label_column: Optional[str] = None) -> tuple[np.ndarray, list[str]]:
    """(x float64 with NaN where a cell is missing, the column names) of a CSV file to complete.

    A cell is missing when it is empty, NaN or one of :data:`MISSING_MARKERS`; any other cell
    must be a number. ``columns`` selects and orders the columns (by default every one but
    ``label_column``).
    """
    header, rows, lines = read_csv_cells(path)
    index = {name: j for j, name in enumerate(header)}
    columns = list(columns or [h for h in header if h != label_column])
    absent = [c for c in columns if c not in index]
    if absent:
        raise DataError(f"{path.name} lacks the column(s) {', '.join(map(repr, absent))} the model was trained on")
    x = np.empty((len(rows), len(columns)))
    for i, (row, line) in enumerate(zip(rows, lines)):
        for k, c in enumerate(columns):
            cell = row[index[c]].strip()
            if cell.lower() in MISSING_MARKERS or cell.lower() in ("", "nan"):
                x[i, k] = np.nan
                continue
            try:
                x[i, k] = float(cell)
            except ValueError:
                raise DataError(f"{path.name} row {line}, column {c!r}: {cell!r} is not a number") from None
    return x, columns
