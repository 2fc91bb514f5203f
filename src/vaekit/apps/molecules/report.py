"""``vaekit report RUN`` for a sequence run: one self-contained page about a molecule model.

The generic report (:mod:`vaekit.runs.report`) draws image and table runs; a sequence run's
inputs are token ids and its samples are strings, and drawing them as molecules is this
application's business, so the CLI hands a sequence run here. The page is built from the generic
report's parts (style, tables, the ELBO split, the KL-per-dimension table, the settings) and
holds, in order:

- the ELBO split per epoch (reconstruction and KL, with each epoch's KL weight beta) and curves;
- KL per latent dimension and active units on (up to 2,000) test molecules, and how often the
  greedy decoding of a test molecule's posterior mean gives the molecule back;
- validity, uniqueness and novelty of 500 prior samples (the MOSES definitions of
  :mod:`.metrics`), their QED, logP and weight beside the training molecules', a drawn grid;
- the molecules on the path between two training molecules' posterior means, drawn.

RDKit is optional: without it the page still writes, with the sampled strings as text and one
line saying that the chemistry sections need ``pip install 'vaekit[chem]'``.
"""

from __future__ import annotations

import html
import random
import statistics
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from vaekit.apps.molecules import chemistry, metrics
from vaekit.apps.molecules.corpus import MOSES, read_molecules
from vaekit.apps.molecules.generate import (DEFAULT_TEMPERATURE, decode_codes, encode_smiles, interpolate_smiles,
                                            reconstruction_rate, sample_smiles)
from vaekit.apps.molecules.jobs import load_vocabulary
from vaekit.apps.molecules.requirements import available, require
from vaekit.errors import VaekitError
from vaekit.measure.diagnostics import ACTIVE_THRESHOLD, latent_diagnostics
from vaekit.runs import folder, plots
from vaekit.runs.report import (REPORT, compare_section, elbo_split, html_page, html_table, kl_dimensions,
                                picture_section, png_uri, settings_tables)

__all__ = ["write_sequence_report"]

NUM_SAMPLES = 500  # prior samples scored: enough for validity/uniqueness to two digits, seconds to draw
DIAGNOSTIC_MOLECULES = 2_000  # test molecules for the KL per dimension (as the generic report)
RECONSTRUCTED = 200  # test molecules for the exact-match reconstruction rate
GRID = 24  # sampled molecules drawn
STEPS = 8  # points on the interpolation path, both ends included
CANONICAL_TRAIN_MAX = 100_000  # a user file's training molecules canonicalised for novelty (~1.6 ms each)
CHEM_MISSING = ("<p class='note'>Validity, uniqueness, novelty, properties and the drawings of molecules need RDKit, "
                "which is not installed: <code>pip install 'vaekit[chem]'</code>. The samples are shown as strings.</p>")


def _header(run_dir: Path, doc: dict, vocab, history: list) -> str:
    spec, sizes = doc.get("spec") or {}, (doc.get("data") or {}).get("sizes") or {}
    data_name = ((doc.get("config") or {}).get("data") or {}).get("name", "?")
    return (f"<h1>vaekit run {html.escape(run_dir.resolve().name)}</h1><p class='muted'>SequenceVAE (GRU "
            f"{spec.get('hidden', '?')} x {spec.get('layers', '?')}, z of {spec.get('latent_dim', '?')} dimensions) on "
            f"{html.escape(str(data_name))}: {vocab.kind} tokens, a vocabulary of {len(vocab)}, strings of at most "
            f"{vocab.max_len} tokens; {sizes.get('train', '?')} training molecules, {len(history)} epochs. Written by "
            f"vaekit report from {html.escape(str(run_dir))}.</p>")


def _epochs_section(history: list, scratch: Path) -> str:
    """The ELBO split of the last epoch, a table of every epoch, and the curves."""
    text = "<h2>The ELBO, split</h2>" + elbo_split(history)
    if not history:
        return text
    rows = [(r["epoch"], f"{r.get('beta', float('nan')):.3f}", f"{r['train_recon']:.3f}", f"{r['train_kl']:.3f}",
             *(f"{r[k]:.3f}" if k in r else "-" for k in ("val_recon", "val_kl", "val_elbo", "val_mutual_info")),
             r.get("val_active_units", "-"), f"{r.get('epoch_time_s', 0):.1f}") for r in history]
    text += ("<h3>Per epoch</h3><p>Nats per molecule. beta: the KL weight of the epoch's last step "
             "(a warm-up or cyclical annealing moves it); the "
             "validation columns are measured after the epoch, the ELBO with beta = 1.</p>"
             + html_table(rows, ("epoch", "beta", "train recon", "train KL", "val recon", "val KL", "val ELBO",
                                 "I(x;z)", "active units", "seconds")))
    text += picture_section(plots.save_curves(history, scratch / "curves.png"), "Training curves",
                            "Loss, reconstruction and KL per epoch on the training and validation molecules.")
    if history[-1].get("val_kl_per_dim"):
        text += picture_section(plots.save_kl_per_dim(history, scratch / "kl_per_dim.png"), "KL per latent dimension "
                                "over training", "The validation KL of each dimension at the last epoch and over training.")
    return text


def _reconstruction(model, vocab, test: Sequence[str], chem: bool) -> str:
    canonical = chemistry.canonical_smiles if chem else None
    rate = reconstruction_rate(model, vocab, test[:RECONSTRUCTED], canonical)
    z, kept, _ = encode_smiles(model, vocab, test[:8])
    same = canonical or (lambda s: s)
    rows = [(test[i], d, "yes" if same(d) is not None and same(d) == same(test[i]) else "no")
            for i, d in zip(kept, decode_codes(model, vocab, z))]
    return (f"<h3>Reconstruction</h3><p>The greedy decoding of the posterior mean gives the same "
            f"{'molecule' if chem else 'string'} back for <b>{rate:.1%}</b> of {min(len(test), RECONSTRUCTED)} test "
            "molecules (a string the vocabulary cannot encode counts as a miss); a code that carries little "
            "information (small KL) cannot pin a molecule down.</p>" + html_table(rows, ("test molecule", "decoded", "same")))


def _latent_section(model, vocab, history: list, test: Optional[Sequence[str]], why: str, chem: bool) -> str:
    """KL per dimension and active units on test molecules (the last epoch's records without them)."""
    text = "<h2>KL per latent dimension and active units</h2>"
    if test:
        enc = vocab.encode(list(test[:DIAGNOSTIC_MOLECULES]))
        found = latent_diagnostics(model, enc.ids, None, batch_size=500)
        text += (f"<p class='muted'>Measured on {enc.ids.shape[0]} test molecules. KL {found['kl']:.3f} nats in all; "
                 f"I(x;z) {found['mutual_info']:.3f} nats (at most {found['mutual_info_max']:.2f} with this many "
                 "molecules).</p>" + kl_dimensions(found["kl_per_dim"], found["activity"], ACTIVE_THRESHOLD))
        return text + _reconstruction(model, vocab, test, chem)
    kl = history[-1].get("val_kl_per_dim") if history else None
    text += f"<p class='muted'>Not measured on test molecules: {html.escape(why)}.</p>"
    if kl:
        text += ("<p class='muted'>From the validation molecules at the last epoch (metrics.jsonl).</p>"
                 + kl_dimensions(kl, None, ACTIVE_THRESHOLD))
    return text


def _properties(valid: Sequence[str], train: Sequence[str], seed: int) -> str:
    """Mean (sd) of QED, logP and molecular weight of the valid samples and of as many training molecules."""
    weight = require("rdkit.Chem.Descriptors").MolWt
    reference = random.Random(seed).sample(list(train), min(len(train), len(valid))) if train else []
    sets = [[m for m in map(chemistry.to_mol, group) if m is not None] for group in (valid, reference)]

    def summary(mols, f) -> str:
        values = [f(m) for m in mols]
        return "-" if len(values) < 2 else f"{statistics.mean(values):.2f} ({statistics.stdev(values):.2f})"

    rows = [(name, *(summary(mols, f) for mols in sets)) for name, f in
            (("QED", chemistry.qed), ("logP (Crippen)", chemistry.logp), ("molecular weight (Da)", weight))]
    return html_table(rows, ("property, mean (sd)", f"{len(sets[0])} valid samples", f"{len(sets[1])} training molecules"))


def _novelty(valid: list[str], train: Sequence[str], moses: bool) -> str:
    if not train:
        return "-"
    if moses:  # MOSES's training SMILES are RDKit-canonical already
        return f"{metrics.novelty(valid, train, canonical=True):.3f}"
    cut = list(train[:CANONICAL_TRAIN_MAX])
    note = "" if len(train) <= CANONICAL_TRAIN_MAX else f" (against the first {CANONICAL_TRAIN_MAX:,} training molecules)"
    return f"{metrics.novelty(valid, cut, canonicalize_train=True, canonical=True):.3f}{note}"


def _samples_section(smiles: list[str], counts: dict, vocab, train: Sequence[str], why: str, chem: bool, moses: bool,
                     scratch: Path, seed: int) -> str:
    text = (f"<h2>Samples</h2><p>{len(smiles)} strings decoded from z ~ N(0, I) (seed {seed}), each token drawn from "
            f"the decoder's distribution (temperature {DEFAULT_TEMPERATURE:g}).")
    if counts["rejected"]:
        text += (f" The sampler drew {counts['drawn']} strings and set aside the {counts['rejected']} that break SMILES "
                 f"syntax or an atom's valence, or whose aromatic rings have no Kekulé structure (drawing again from a "
                 f"new z): the decoder's own strings are {1 - counts['rejected'] / counts['drawn']:.3f} well formed"
                 + (f"; {counts['unchecked']} malformed ones fill the rest" if counts["unchecked"] else "") + ".")
    text += "</p>"
    if not chem:
        shown = "".join(f"<li><code>{html.escape(s)}</code></li>" for s in smiles[:GRID])
        kind = "<p class='muted'>This run models lines of text; no chemistry applies.</p>" if vocab.kind == "chars" else CHEM_MISSING
        return text + kind + f"<ol>{shown}</ol>"
    valid = metrics.valid_canonical(smiles)
    rows = [("valid (RDKit parses and sanitises it)", f"{len(valid) / len(smiles):.3f}"),
            ("unique (distinct canonical SMILES among the valid)",
             f"{metrics.unique_at_k(valid, canonical=True):.3f}" if valid else "-"),
            ("novel (distinct valid ones not among the run's training molecules)",
             (_novelty(valid, train, moses) if valid else "-") if train else f"not measured: {why}")]
    text += ("<p>The MOSES definitions (Polykovskiy et al. 2020).</p>" + html_table(rows, ("metric", "value")))
    if not valid:
        return text + "<p>No sample is a valid molecule, so there is nothing to draw.</p>"
    text += "<h3>Properties</h3>" + _properties(valid, train, seed)
    drawn = chemistry.draw_grid(valid[:GRID], scratch / "samples_grid.png", size=200)
    return text + picture_section(drawn, "Sampled molecules", f"The first {min(GRID, len(valid))} valid samples "
                                  "(canonical SMILES under each); the invalid ones are counted above, not drawn.")


def _interpolation_section(model, vocab, train: Sequence[str], why: str, chem: bool, scratch: Path, seed: int) -> str:
    text = "<h2>Interpolation between two training molecules</h2>"
    candidates = random.Random(seed).sample(list(train), min(len(train), 50)) if train else []
    kept = vocab.encode(candidates).kept if candidates else []
    if len(kept) < 2:
        return text + f"<p class='muted'>Not drawn: {html.escape(why or 'no two training molecules could be encoded')}.</p>"
    a, b = candidates[kept[0]], candidates[kept[1]]
    path = interpolate_smiles(model, vocab, a, b, STEPS)
    ts = [t / (STEPS - 1) for t in range(STEPS)]
    text += (f"<p>From <code>{html.escape(a)}</code> to <code>{html.escape(b)}</code>: the greedy decodings of "
             f"{STEPS} evenly spaced points on the straight line between their posterior means (the ends are the two "
             "molecules' reconstructions, which equal them only when the model reconstructs them).</p>")
    valid = [chemistry.to_mol(s) is not None for s in path] if chem else [None] * STEPS
    rows = [(f"{t:.2f}", s, "-" if v is None else ("yes" if v else "no")) for t, s, v in zip(ts, path, valid)]
    text += html_table(rows, ("t", "decoded", "valid"))
    if not chem:
        return text + (CHEM_MISSING if vocab.kind != "chars" else "")
    drawn = chemistry.draw_grid([a, *path, b], scratch / "interpolation_path.png", per_row=STEPS + 2, size=180,
                                legends=["A (training)", *(f"t={t:.2f}" for t in ts), "B (training)"])
    return text + (f"<p><img alt='interpolation path' src='{png_uri(drawn)}'></p><p class='muted'>The two training "
                   "molecules at the ends, the decoded path between them; an invalid decoding is an empty cell.</p>")


def _read_molecules(doc: dict, vocab) -> tuple[list[str], list[str], str]:
    """(training, test strings, "") of the run, or ([], [], the reason) when they cannot be read here.
    Nothing is downloaded: a report reads what is on this machine."""
    cfg = folder.run_config(doc)
    cfg.data.download = False
    try:
        train, _, test, _ = read_molecules(cfg, (doc.get("app") or {}).get("max_molecules"), progress=False,
                                           kind=vocab.kind)
    except (VaekitError, OSError) as exc:
        return [], [], f"the run's molecules cannot be read here ({exc})"
    return train, test, ""


def write_sequence_report(run_dir: str | Path, measure: bool = True, compare: Optional[str | Path] = None,
                          num_samples: int = NUM_SAMPLES, seed: int = 0) -> Path:
    """Write ``RUN/report.html`` for a sequence run (self-contained: pictures inlined, no network)
    and return its path. ``measure=False`` reads none of the run's data: the KL per dimension
    comes from the metrics records, and novelty and the interpolation are left out; the
    samples are drawn either way. ``compare``: another run's ELBO split beside this one's."""
    run_dir = Path(run_dir)
    doc, history = folder.read_run(run_dir), folder.read_metrics(run_dir)
    model, vocab = folder.load(run_dir), load_vocabulary(run_dir)
    train, test, why = _read_molecules(doc, vocab) if measure else ([], [], "the report was asked not to (--no-measure)")
    chem = vocab.kind != "chars" and available("rdkit")
    moses = str(((doc.get("config") or {}).get("data") or {}).get("name", "")).lower() == MOSES
    counts = {}
    smiles = sample_smiles(model, vocab, num_samples, seed=seed, counts=counts)
    sections = [_header(run_dir, doc, vocab, history)]
    with tempfile.TemporaryDirectory() as tmp:  # pictures are drawn here and inlined; the run folder is left as it is
        scratch = Path(tmp)
        sections += [_epochs_section(history, scratch), _latent_section(model, vocab, history, test, why, chem),
                     _samples_section(smiles, counts, vocab, train, why, chem, moses, scratch, seed),
                     _interpolation_section(model, vocab, train, why, chem, scratch, seed)]
    if compare is not None:
        sections.append(compare_section(run_dir, Path(compare)))
    app = html_table(sorted({**(doc.get("spec") or {}), **(doc.get("app") or {})}.items()), ("", ""))
    sections.append("<h2>Settings</h2><h3>model and tokens</h3>" + app + settings_tables(doc))
    page = html_page(f"vaekit run {html.escape(run_dir.resolve().name)}", "".join(sections))
    out = run_dir / REPORT
    folder.atomic_write(out, page)
    return out
