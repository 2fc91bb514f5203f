"""vaekit report: one self-contained page per run."""

import re
import shutil

from vaekit.runs.report import KL_ACTIVE_NATS, _conditional, _elbo_split, _kl_dimensions, write_report


def test_report_is_self_contained_and_holds_the_runs_pictures(digits_run, tmp_path):
    path = write_report(digits_run)
    assert path == digits_run / "report.html"
    page = path.read_text(encoding="utf-8")
    # every picture the run drew is inlined, none is linked
    for name in ("samples.png", "reconstructions.png", "interpolation.png", "curves.png", "kl_per_dim.png"):
        assert f"alt='{name}' src='data:image/png;base64," in page
    assert not re.search(r"(src|href)=['\"](?!data:)", page), "the page links to something outside itself"
    assert "http://" not in page and "https://" not in page
    # readable without the folder beside it
    alone = tmp_path / "alone.html"
    shutil.copy(path, alone)
    assert alone.read_text(encoding="utf-8") == page
    # the ELBO split and the settings are there
    for text in ("The ELBO, split", "KL(q(z|x) || p(z))", "Settings", "latent_dim", "alt='traverse.png'",
                 "examples/"):
        assert text in page


def test_a_conditional_runs_report_says_its_terms_are_given_the_labels():
    history = [{"epoch": 1, "val_elbo": -40.0, "val_recon": 39.0, "val_kl": 1.0, "val_loss": 40.0}]
    given, plain = _elbo_split(history, given=True), _elbo_split(history)
    assert "bound on log p(x|y)" in given and "-E_q log p(x|y,z)" in given and "KL(q(z|x,y) || p(z))" in given
    assert "bound on log p(x);" in plain and "-E_q log p(x|z)" in plain and "KL(q(z|x) || p(z))" in plain
    # which runs are conditional, from config.json: a CVAE or M2, and M1+M2 through the M2 in its spec
    assert _conditional({"spec": {"data_shape": [1, 8, 8], "num_classes": 10}})
    assert _conditional({"spec": {"m1": {"data_shape": [1, 28, 28]}, "m2": {"data_shape": [50], "num_classes": 10}}})
    assert not _conditional({"spec": {"data_shape": [1, 8, 8], "num_classes": 0}}) and not _conditional({})


def test_the_two_readings_of_active_are_shown_and_a_disagreement_is_named():
    kl = [2.5, 0.01, 0.0]
    activity = [0.9, 0.02, 0.001]  # z1 moves with the input (0.02 > 0.01) but carries 0.01 nats
    text = _kl_dimensions(kl, activity, 0.01)
    assert f"<b>1 of 3</b> dimensions carry more than {KL_ACTIVE_NATS} nats" in text
    assert "<b>2 of 3</b> pass Burda" in text
    assert "disagree on z1:" in text
    agree = _kl_dimensions([2.5, 1.0, 0.0], [0.9, 0.5, 0.001], 0.01)
    assert "disagree" not in agree


def test_report_without_measuring_uses_the_metrics(digits_run):
    page = write_report(digits_run, measure=False).read_text(encoding="utf-8")
    assert "validation split at the last epoch" in page
    assert "Cov_x" in page


def test_cli_report_and_serve_errors(digits_run, capsys):
    from vaekit.cli.main import main

    assert main(["report", str(digits_run), "--no-measure"]) == 0
    assert "report.html" in capsys.readouterr().out
    assert main(["serve", str(digits_run / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vaekit: error:")


def test_report_compares_a_run_side_by_side(digits_run, tmp_path, capsys):
    import vaekit
    from conftest import small_config
    from vaekit.cli.main import main

    cfg = small_config(epochs=2)
    cfg.model.model = "ae"
    ae = vaekit.train_run(cfg, out=tmp_path / "ae")
    page = write_report(ae, measure=False, compare=digits_run).read_text(encoding="utf-8")
    assert f"Side by side with {digits_run.name}" in page
    assert page.count("alt='samples.png'") == 3  # its own section and both cells of the comparison
    assert main(["report", str(ae), "--no-measure", "--compare", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.startswith("vaekit: error:")
