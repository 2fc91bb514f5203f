"""``vaekit report RUN``: one self-contained HTML page about a run folder.

The page inlines every picture as a data URI and carries its own style, so it opens in any
browser without the folder beside it and without a network. It reads the run folder
(``config.json``, ``metrics.jsonl`` and the pictures the run drew) and, where the run's data can
still be loaded, measures the latent space on the test split for the KL-per-dimension table and
the two readings of "active".
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
from pathlib import Path
from typing import Any, Optional

from vaekit.errors import VaekitError
from vaekit.runs import folder

REPORT = "report.html"
# A latent dimension "carries information" in the KL reading when its KL to the prior, averaged
# over the data, exceeds this many nats; Burda et al.'s covariance test (ACTIVE_THRESHOLD in
# measure/diagnostics.py) asks instead whether its posterior mean moves with the input.
KL_ACTIVE_NATS = 0.05

# (file, heading, what a reader should see in it); pictures that a run does not have are skipped
PICTURES = [
    ("curves.png", "Training curves", "Loss, reconstruction and KL per epoch on the training and validation splits "
     "(a semi-supervised run adds the classifier's validation error)."),
    ("kl_per_dim.png", "KL per latent dimension", "The validation KL of each dimension at the last epoch and over training."),
    ("samples.png", "Samples", "Draws z ~ N(0, I) decoded: what the model generates."),
    ("samples_by_class.png", "Samples by class", "One row per class of the conditional model."),
    ("reconstructions.png", "Reconstructions", "Test inputs beside the means of p(x|z) at their posterior means."),
    ("interpolation.png", "Interpolations", "The decoded path between two test examples' latents, linear and spherical."),
    ("traverse.png", "Traversals", "One active latent dimension varied at a time around the prior mean (the "
     "others at 0); rows named with their KL."),
    ("latent.png", "Latent map", "Posterior means of test examples, coloured by label (PCA to 2-D when needed)."),
    ("latent_plane.png", "Latent plane", "Decoded images over a grid of the 2-D latent space."),
    ("histograms.png", "Columns", "Each column of real test rows against samples."),
    ("columns.png", "Columns", "Each column of real rows against synthetic ones."),
]

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;font-size:.92em}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%;border:1px solid #eee}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em .8em;margin:.8em 0}.muted{color:#666;font-size:.9em}
.off{color:#999}
"""


PICTURES_TEXT = {file: caption for file, _, caption in PICTURES}
EXPERIMENTS = (
    "<h2>The ideas behind these pictures, as experiments</h2><p>The project's <code>examples/</code> folder "
    "runs each idea in minutes on a CPU (see its README): <code>active_units.py</code> (how many latent units "
    "stay active), <code>posterior_collapse.py</code> (a strong decoder ignores z; free bits bring it back), "
    "<code>beta_sweep.py</code> (rate against distortion), <code>decoder_scale_floor.py</code> (why a learned "
    "decoder scale needs a floor), <code>disentanglement.py</code> (beta-VAE, beta-TCVAE and the mutual "
    "information gap), <code>gradient_variance.py</code> (the reparameterisation trick against REINFORCE); "
    "<code>vaekit train --model ae</code> trains the same networks without the KL term, for contrast.</p>")


def _picture_section(path: Path, heading: str, caption: str) -> str:
    return f"<h2>{heading}</h2><p>{caption}</p><p><img alt='{path.name}' src='{_png(path)}'></p>"


def _png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _table(rows: list[tuple[str, Any]], header: Optional[tuple[str, ...]] = None) -> str:
    head = "" if header is None else "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _settings(doc: dict[str, Any]) -> str:
    parts = []
    for section, values in (doc.get("config") or {}).items():
        if isinstance(values, dict):
            parts.append(f"<h3>{html.escape(section)}</h3>" + _table(sorted(values.items()), ("setting", "value")))
    env = doc.get("environment") or {}
    if env:
        parts.append("<h3>environment</h3>" + _table(sorted(env.items()), ("", "")))
    return "".join(parts)


def _conditional(doc: dict[str, Any]) -> bool:
    """Whether a run's model is given labels (a CVAE, M2 and its kin; M1+M2's spec holds M2's)."""
    spec = doc.get("spec") or {}
    return bool(spec.get("m2", spec).get("num_classes"))


def _elbo_split(history: list[dict[str, Any]], given: bool = False) -> str:
    """The last epoch's validation terms; ``given``: a conditional run, whose terms are given the labels."""
    if not history:
        return "<p class='muted'>This run has no metrics records.</p>"
    last = history[-1]
    best = min((r for r in history if "val_loss" in r), key=lambda r: r["val_loss"], default=None)
    yz, xy, px = ("y,z", "x,y", "log p(x|y)") if given else ("z", "x", "log p(x)")
    rows = [(key, f"{last[k]:.3f}") for key, k in (("ELBO (validation)", "val_elbo"), (f"reconstruction  -E_q log p(x|{yz})",
            "val_recon"), (f"KL(q(z|{xy}) || p(z))", "val_kl"), ("loss = recon + beta * KL", "val_loss")) if k in last]
    text = (f"<p>Epoch {last.get('epoch')} of the run, nats per example. The ELBO = -(reconstruction + KL) is a lower "
            f"bound on {px}{' (each example given its label)' if given else ''}; the loss that training minimises "
            "is reconstruction + beta * KL, so with beta = 1 the loss is -ELBO. For continuous data the density of a point can exceed 1, so the ELBO can be positive.</p>")
    if best is not None and best is not last:
        text += f"<p>The best validation loss, {best['val_loss']:.3f}, was at epoch {best['epoch']}.</p>"
    return text + _table(rows, ("term", "nats per example"))


def _kl_dimensions(kl: list[float], activity: Optional[list[float]], cov_threshold: float) -> str:
    """The per-dimension table and both readings of "active", with a note when they disagree."""
    by_kl = [d for d, v in enumerate(kl) if v > KL_ACTIVE_NATS]
    rows, by_cov = [], []
    for d in sorted(range(len(kl)), key=lambda d: -kl[d]):
        cov = None if activity is None else activity[d]
        if cov is not None and cov > cov_threshold:
            by_cov.append(d)
        rows.append((f"z{d}", f"{kl[d]:.3f}", "-" if cov is None else f"{cov:.4f}",
                     "yes" if d in by_kl else "no", "-" if cov is None else ("yes" if cov > cov_threshold else "no")))
    text = (f"<p><b>{len(by_kl)} of {len(kl)}</b> dimensions carry more than {KL_ACTIVE_NATS} nats of KL "
            f"(the information reading).")
    if activity is not None:
        text += (f" <b>{len(by_cov)} of {len(kl)}</b> pass Burda et al.'s covariance test, Cov_x(E_q[z_d|x]) > "
                 f"{cov_threshold} (their posterior mean moves with the input).")
    text += "</p>"
    disagree = sorted(set(by_cov) - set(by_kl))
    if disagree:
        text += ("<p class='note'>The two readings disagree on " + ", ".join(f"z{d}" for d in disagree) + ": their "
                 "posterior means move with the input (variance above the covariance threshold), yet their KL is below "
                 f"{KL_ACTIVE_NATS} nats, so they carry almost no information about x. The covariance test counts a unit "
                 "whose mean moves a little while its posterior stays almost as wide as the prior; the KL counts what "
                 "the unit actually encodes. Traversals of such dimensions barely change the image.</p>")
    header = ("dimension", "KL (nats)", "Cov_x(E_q[z_d])", f"KL > {KL_ACTIVE_NATS}", f"Cov > {cov_threshold}")
    return text + _table(rows, header)


def _measured(run_dir: Path, scratch: Path) -> tuple[Optional[dict[str, Any]], Optional[Path]]:
    """Latent diagnostics on (up to 2000 examples of) the test split and, for an image run without
    traverse.png, a traversal of its active dimensions drawn into ``scratch``; (None, None) when
    the run's data cannot be loaded here (the report then falls back on the metrics records)."""
    from vaekit.measure.diagnostics import ACTIVE_THRESHOLD, TRAVERSE_KL, dims_by_kl, latent_diagnostics  # torch: only here
    from vaekit.runs.evaluate import run_data
    from vaekit.runs.pictures import save_traverse
    from vaekit.training.loop import eval_inputs

    try:
        model, cfg, data = run_data(run_dir)
        x = eval_inputs(data, "test", cfg)[:2000]
        y = data.test_labels[:2000] if getattr(model, "conditional", False) else None
        diagnostics = latent_diagnostics(model, x, y, seed=cfg.training.seed)
    except (VaekitError, OSError, AttributeError, TypeError):
        return None, None
    picture = None
    if data.kind == "image" and not (run_dir / "traverse.png").is_file():
        dims = dims_by_kl(diagnostics, ACTIVE_THRESHOLD, kl_threshold=TRAVERSE_KL)[:12]
        y0 = None if y is None else y[:1]
        picture = save_traverse(model, dims, scratch / "traverse.png", None, y0, kl_per_dim=diagnostics["kl_per_dim"])
    return diagnostics, picture


def _sweep_section(run_dir: Path) -> str:
    for where in (run_dir, run_dir.parent):
        if (where / "rate_distortion.png").is_file():
            text = "<p>This run belongs to a beta sweep: distortion against rate, one point per beta.</p>"
            pictures = [where / "rate_distortion.png", where / "samples_by_beta.png"]
            return "<h2>Rate and distortion</h2>" + text + "".join(
                f"<p><img alt='{p.stem}' src='{_png(p)}'></p>" for p in pictures if p.is_file())
    return ""


SIDE_BY_SIDE = ("samples.png", "interpolation.png", "latent.png", "kl_per_dim.png")


def _compare_section(run_dir: Path, other: Path) -> str:
    """Another run's pictures beside this one's (e.g. a VAE beside ``--model ae``), with both ELBO splits."""
    folder.read_run(other)  # a RunError (one line) when ``other`` is not a run
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(p.resolve().name)}</th>" for p in (run_dir, other)) + "</tr>"
    rows, last = [], [(folder.read_metrics(p) or [{}])[-1] for p in (run_dir, other)]
    for key, text in (("val_recon", "reconstruction"), ("val_kl", "KL"), ("val_elbo", "ELBO")):
        values = [record.get(key) for record in last]
        rows.append(f"<tr><td>{text}</td>" + "".join(f"<td class='num'>{'-' if v is None else f'{v:.3f}'}</td>"
                                                      for v in values) + "</tr>")
    for file in SIDE_BY_SIDE:
        cells = [f"<td><img alt='{file}' src='{_png(p / file)}'></td>" if (p / file).is_file() else "<td>-</td>"
                 for p in (run_dir, other)]
        rows.append(f"<tr><td>{file}</td>{''.join(cells)}</tr>")
    return (f"<h2>Side by side with {html.escape(other.resolve().name)}</h2><p>Validation nats per example at "
            f"each run's last epoch, and the pictures both runs drew.</p><table>{head}{''.join(rows)}</table>")


def html_page(title: str, body: str) -> str:
    """The whole self-contained page: ``body`` (HTML, already escaped) under ``title``, in the report's style."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>\n")


# The parts of the page, public for an application that writes the report of its own run kind
# (apps/molecules/report.py for a sequence run) in the same style.
picture_section, png_uri, html_table, settings_tables = _picture_section, _png, _table, _settings
elbo_split, kl_dimensions, compare_section = _elbo_split, _kl_dimensions, _compare_section


def write_report(run_dir: str | Path, measure: bool = True, compare: Optional[str | Path] = None) -> Path:
    """Write ``RUN/report.html`` (self-contained: pictures inlined, no network) and return its path.

    ``measure=False`` skips the test-split diagnostics and uses the metrics records only;
    ``compare`` puts another run's pictures and ELBO split beside this one's (e.g. a VAE beside an
    autoencoder trained the same way).
    """
    run_dir = Path(run_dir)
    doc = folder.read_run(run_dir)
    history = folder.read_metrics(run_dir)
    name = html.escape(run_dir.resolve().name)
    cfg = doc.get("config") or {}
    kind = doc.get("class") or (cfg.get("model") or {}).get("model", "vae")
    data_name = (cfg.get("data") or {}).get("name", "?")
    sections = [f"<h1>vaekit run {name}</h1><p class='muted'>model {html.escape(str(kind))}, data "
                f"{html.escape(str(data_name))}; written by vaekit report from {html.escape(str(run_dir))}</p>"]
    sections.append("<h2>The ELBO, split</h2>" + _elbo_split(history, _conditional(doc)))
    with tempfile.TemporaryDirectory() as scratch:
        measured, traversal = _measured(run_dir, Path(scratch)) if measure else (None, None)
        traversal_html = "" if traversal is None else _picture_section(traversal, "Traversals", PICTURES_TEXT["traverse.png"])
    last = history[-1] if history else {}
    kl = measured["kl_per_dim"] if measured else last.get("val_kl_per_dim")
    if kl:
        from_where = "the test split" if measured else "the validation split at the last epoch (metrics.jsonl)"
        sections.append(f"<h2>KL per dimension and active units</h2><p class='muted'>Measured on {from_where}.</p>"
                        + _kl_dimensions(kl, measured["activity"] if measured else None, 0.01))
    for file, heading, caption in PICTURES:
        path = run_dir / file
        if path.is_file():
            sections.append(_picture_section(path, heading, caption))
        elif file == "traverse.png":
            sections.append(traversal_html)
    sections.append(_sweep_section(run_dir))
    if compare is not None:
        sections.append(_compare_section(run_dir, Path(compare)))
    sections.append(EXPERIMENTS)
    sections.append("<h2>Settings</h2>" + _settings(doc))
    page = html_page(f"vaekit run {name}", "".join(sections)
                     + f"<p class='muted'>metrics: {len(history)} epochs; config.json: {html.escape(json.dumps(kind))}</p>")
    out = run_dir / REPORT
    folder.atomic_write(out, page)
    return out
