"""Property-based fuzzing of the parsers users feed by hand.

The table reader, the config parser, config files and ``key=value`` overrides either accept
their input or raise a :class:`vaekit.errors.VaekitError` with a one-line message, never
another exception.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vaekit.config import Config, DataConfig, apply_overrides, load_config_file
from vaekit.data import load_array, load_dataset
from vaekit.data.tables import read_csv_table
from vaekit.errors import VaekitError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = [f"{name}.{f.name}" for name, section in Config().sections().items() for f in dataclasses.fields(section)]
SHORT_KEYS = [k.split(".", 1)[1] for k in KEYS]


def _one_line(exc: BaseException) -> None:
    assert isinstance(exc, VaekitError), f"{type(exc).__name__}: {exc}"
    assert str(exc) and "\n" not in str(exc), repr(str(exc))


# ---------------------------------------------------------------------------------- tables

_cell = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "nan", "NaN", "inf", "-inf", "1e309", "NA", "?", "1,5", '"2"', "0x10", "1_000",
                     "\u00e9", "\x00", "\ufeff1", "1e", "--1", "+.5", "infinity", "True"]),
    st.text(max_size=4),
)
_row = st.lists(_cell, min_size=0, max_size=5)
_separator = st.sampled_from([",", ",", ";", "\t"])
_newline = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def csv_bytes(draw) -> bytes:
    """Mostly table-shaped text (so the parser gets deep), sometimes raw bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    header = draw(st.lists(st.sampled_from(["a", "b", "c", "y", "", " a", "a"]) | st.text(max_size=3),
                           min_size=1, max_size=4))
    rows = draw(st.lists(_row, max_size=8))
    sep, nl = draw(_separator), draw(_newline)
    text = nl.join(sep.join(r) for r in [header, *rows])
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return text.encode(encoding, errors="replace")


# every example's file in a folder of its own below one root, removed when the test process ends
# (a folder per example left in the system's temporary directory came to thousands over a few runs)
_ROOT = tempfile.TemporaryDirectory(prefix="vaekit-fuzz-")


def _write(data: bytes, suffix: str = ".csv") -> Path:
    folder = Path(tempfile.mkdtemp(dir=_ROOT.name))
    path = folder / f"t{suffix}"
    path.write_bytes(data)
    return path


@FUZZ
@given(data=csv_bytes(), label=st.sampled_from([None, "y", "a", "zz"]))
def test_csv_reader_accepts_or_raises_vaekit_error(data, label):
    path = _write(data)
    try:
        table = read_csv_table(path, label)
    except Exception as exc:  # noqa: BLE001 - the property under test
        _one_line(exc)
    else:
        assert table.x.dtype == np.float64 and table.x.ndim == 2 and table.x.shape[0] >= 2
        assert np.isfinite(table.x).all()
        assert table.x.shape[1] == len(table.columns) >= 1
        if table.labels is not None:
            assert table.labels.shape == (table.x.shape[0],)
            assert 0 <= table.labels.min() and table.labels.max() < len(table.class_names)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=csv_bytes(), label=st.sampled_from([None, "y"]),
       val=st.sampled_from([0.0, 0.1, 0.5]), test=st.sampled_from([0.0, 0.2, 0.4]))
# found by this test: one training row of 3.4e38 and a test row of 0 standardised to -inf in float32
@example(data=b"a\n0\n3.4028235677973366e+38", label=None, val=0.0, test=0.2)
def test_csv_dataset_loads_or_raises_vaekit_error(data, label, val, test):
    path = _write(data)
    try:
        splits = load_dataset(DataConfig(name=str(path), label_column=label, val_fraction=val, test_fraction=test))
    except Exception as exc:  # noqa: BLE001
        _one_line(exc)
    else:
        import torch

        assert splits.kind == "table" and len(splits.train) >= 1
        for part in (splits.train, splits.val, splits.test):
            assert part.dtype == torch.float32 and torch.isfinite(part).all()
        try:  # the trained preprocessing applied to the same file
            x, _ = load_array(path, splits.preprocessing)
        except Exception as exc:  # noqa: BLE001
            _one_line(exc)
        else:
            assert x.shape[1:] == splits.shape


# ---------------------------------------------------------------------------------- configs

_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.sampled_from(["auto", "conv", "mlp", "cvae", "bernoulli", "64,64", "1e-3", "none", "true"]),
)
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=8)


@st.composite
def config_dicts(draw):
    """Dicts shaped like configs (real sections and keys) with values of every kind, plus noise."""
    d: dict = {}
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=5)):
        section, name = key.split(".")
        d.setdefault(section, {})[name] = draw(_json)
    if draw(st.booleans()):
        d[draw(st.sampled_from(["model", "data", "training", "optim", ""]))] = draw(_json)
    return d


@FUZZ
@given(d=st.one_of(config_dicts(), _json))
def test_config_from_dict_accepts_or_raises_vaekit_error(d):
    try:
        cfg = Config.from_dict(d)
    except Exception as exc:  # noqa: BLE001
        _one_line(exc)
    else:
        cfg.validate()
        again = Config.from_dict(json.loads(json.dumps(cfg.to_dict())))  # a valid config round-trips
        assert again.to_dict() == cfg.to_dict()


@FUZZ
@given(text=st.one_of(st.text(max_size=120), config_dicts().map(json.dumps), _json.map(json.dumps)),
       suffix=st.sampled_from([".json", ".yaml", ".yml", ".txt"]))
def test_config_file_loads_or_raises_vaekit_error(text, suffix):
    path = _write(text.encode("utf-8", errors="surrogatepass"), suffix)
    try:
        cfg = load_config_file(path)
    except Exception as exc:  # noqa: BLE001
        _one_line(exc)
    else:
        assert isinstance(cfg, Config)
        cfg.validate()


_value = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["0", "-1", "1e400", "nan", "inf", "3.5", "1,2", ",", "64,,64", "[64]", "true", "none", "", "é"]),
    st.integers(-10**30, 10**30).map(str),
    st.floats().map(repr),
)


@FUZZ
@given(items=st.lists(
    st.one_of(
        st.tuples(st.sampled_from(KEYS + SHORT_KEYS), _value).map(lambda kv: f"{kv[0]}={kv[1]}"),
        st.text(max_size=15),
    ),
    max_size=4,
))
def test_overrides_apply_or_raise_vaekit_error(items):
    cfg = Config()
    try:
        apply_overrides(cfg, items)
    except Exception as exc:  # noqa: BLE001
        _one_line(exc)
    else:
        cfg.validate()
        for section in cfg.sections().values():  # every number that got through is finite
            for f in dataclasses.fields(section):
                value = getattr(section, f.name)
                if isinstance(value, float):
                    assert math.isfinite(value)
