"""vaekit traverse: by default only the dimensions that change a picture (active by the covariance
test and with KL above 0.1 nats), and an axis of the values traversed under the columns."""

import numpy as np
import torch
from PIL import Image

from vaekit.cli.draw import _dims
from vaekit.cli.main import main
from vaekit.measure.diagnostics import TRAVERSE_KL, dims_by_kl
from vaekit.runs.plots import save_labelled_rows


def _diagnostics(activity, kl):
    return {"activity": activity, "kl_per_dim": kl}


def test_a_dimension_active_by_covariance_but_with_tiny_kl_is_left_out():
    d = _diagnostics(activity=[0.5, 0.02, 0.0, 0.9], kl=[1.5, 0.05, 0.0, 3.0])
    assert dims_by_kl(d) == [3, 0, 1]  # the covariance test alone keeps z1
    assert dims_by_kl(d, kl_threshold=TRAVERSE_KL) == [3, 0]
    dims, said = _dims(None, d, 4)
    assert dims == [3, 0] and "2 active" in said and "KL > 0.1" in said and "--dims all" in said


def test_when_no_dimension_passes_both_tests_all_are_shown_and_said_so():
    d = _diagnostics(activity=[0.02, 0.0], kl=[0.05, 0.2])  # each passes one test only
    dims, said = _dims(None, d, 2)
    assert dims == [1, 0] and said.startswith("no latent dimension is active")
    assert _dims("all", d, 2)[0] == [0, 1]


def test_column_names_draw_an_axis_under_the_grid(tmp_path):
    rows = torch.rand(2, 5, 1, 8, 8)
    plain = save_labelled_rows(rows, tmp_path / "plain.png", ["a", "b"])
    axis = save_labelled_rows(rows, tmp_path / "axis.png", ["a", "b"], column_names=list("vwxyz"), column_title="z")
    (pw, ph), (aw, ah) = Image.open(plain).size, Image.open(axis).size
    assert aw == pw and ah > ph  # the same grid with room for the values beneath it
    bottom = np.asarray(Image.open(axis).convert("L"))[ph:]
    assert (bottom < 128).any()  # the values are drawn there


def test_cli_default_says_how_rows_were_chosen(digits_run, tmp_path, capsys):
    out = tmp_path / "t.png"
    assert main(["traverse", str(digits_run), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert ("KL > 0.1 nats" in said or "no latent dimension is active" in said) and out.stat().st_size > 0
