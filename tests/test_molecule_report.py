"""vaekit report on a sequence run: the molecule page (ELBO per epoch, KL per dimension, samples scored and
drawn, an interpolation drawn), with and without RDKit."""

from __future__ import annotations

import base64
import json
import re
import sys

import pytest

from vaekit.apps.molecules.report import NUM_SAMPLES, STEPS, write_sequence_report
from vaekit.cli.main import main
from vaekit.runs import folder

pytestmark = pytest.mark.filterwarnings("ignore::vaekit.measure.diagnostics.PosteriorCollapseWarning")

SMILES = ["CCO", "c1ccccc1", "CC(=O)O", "CCN(CC)CC", "Clc1ccccc1", "CC(C)Cc1ccccc1", "O=C=O", "CCOC(=O)C",
          "C1CCCCC1", "CC(C)O", "c1ccncc1", "CCCCCC", "BrCCBr", "CC#N", "C=CC=C", "OCC(O)CO", "CCCl", "NCCO"]
PNG = re.compile(r"alt='([^']*)' src='data:image/png;base64,([^']+)'")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("molreport")
    data = tmp / "mols.csv"
    data.write_text("SMILES\n" + "".join(f"{s}\n" for s in SMILES * 3))
    out = tmp / "run"
    assert main(["train", "--model", "sequence", "--data", str(data), "--hidden", "32", "--latent-dim", "4",
                 "--embed-dim", "8", "--epochs", "3", "--batch-size", "8", "--lr", "0.005", "--kl-cycles", "2",
                 "--out", str(out), "--no-progress", "data.test_fraction=0.15", "training.verbose=false"]) == 0
    return out


def _pictures(page: str) -> dict[str, bytes]:
    return {alt: base64.b64decode(data) for alt, data in PNG.findall(page)}


def test_the_cli_writes_a_molecule_report_with_every_section(run, capsys):
    pytest.importorskip("rdkit", reason="the chemistry sections need RDKit")
    assert main(["report", str(run)]) == 0
    assert "report.html" in capsys.readouterr().out
    page = (run / "report.html").read_text(encoding="utf-8")
    for heading in ("The ELBO, split", "Per epoch", "KL per latent dimension and active units", "Reconstruction",
                    "Samples", "Sampled molecules", "Interpolation between two training molecules", "Settings"):
        assert f">{heading}</h" in page, heading
    # one row per epoch in the per-epoch table, the KL weight of a cyclical schedule among its columns
    epochs = folder.read_metrics(run)
    table = page.split("<h3>Per epoch</h3>")[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + len(epochs) and "<th>beta</th>" in table
    assert f"{NUM_SAMPLES} strings decoded from z ~ N(0, I)" in page
    # a three-epoch model writes some malformed strings: the page says how many were drawn again
    drawn = re.search(r"The sampler drew (\d+) strings and set aside the (\d+) ", page)
    assert drawn and int(drawn[1]) == NUM_SAMPLES + int(drawn[2]) and int(drawn[2]) > 0
    fractions = re.findall(r"<td>(?:valid|unique|novel) \([^<]*\)</td><td>([0-9.]+)</td>", page)
    assert len(fractions) == 3 and all(0.0 <= float(f) <= 1.0 for f in fractions)
    pictures = _pictures(page)
    assert {"curves.png", "samples_grid.png", "interpolation path"} <= set(pictures)
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000 for png in pictures.values())
    path = page.split("Interpolation between two training molecules")[1]
    assert path.split("</table>")[0].count("<tr>") == 1 + STEPS  # the decoded path, t = 0 .. 1
    assert not re.search(r"(src|href)=['\"](?!data:)", page), "the page links to something outside itself"


def test_without_rdkit_the_report_still_writes_and_says_what_to_install(run, monkeypatch):
    for name in [m for m in sys.modules if m == "rdkit" or m.startswith("rdkit.")]:
        monkeypatch.setitem(sys.modules, name, None)  # importing any part of RDKit now fails
    monkeypatch.setitem(sys.modules, "rdkit", None)
    page = write_sequence_report(run).read_text(encoding="utf-8")
    assert "pip install 'vaekit[chem]'" in page
    pictures = _pictures(page)
    assert "curves.png" in pictures and "samples_grid.png" not in pictures and "interpolation path" not in pictures
    assert page.count("<li><code>") > 0  # the samples, as strings
    path = page.split("Interpolation between two training molecules")[1]
    assert path.split("</table>")[0].count("<tr>") == 1 + STEPS  # the path, as strings


def test_a_run_whose_data_is_gone_falls_back_on_its_metrics(run, tmp_path):
    moved = tmp_path / "moved"
    moved.mkdir()
    for f in run.iterdir():
        (moved / f.name).write_bytes(f.read_bytes())
    doc = json.loads((moved / folder.CONFIG).read_text(encoding="utf-8"))
    doc["config"]["data"]["name"] = str(tmp_path / "gone.csv")
    (moved / folder.CONFIG).write_text(json.dumps(doc), encoding="utf-8")
    page = write_sequence_report(moved).read_text(encoding="utf-8")
    assert "cannot be read here" in page and "From the validation molecules at the last epoch" in page
    assert "interpolation path" not in page and "Not drawn:" in page
    unmeasured = write_sequence_report(run, measure=False).read_text(encoding="utf-8")
    assert "--no-measure" in unmeasured and "Measured on" not in unmeasured
