"""The sequence VAE on MOSES: train the 2-hour recipe, sample, score with the MOSES metrics.

    python bench/moses.py train --run runs/moses-seq       # = RECIPE: all MOSES training molecules, 3 epochs, cosine
    python bench/moses.py evaluate --run runs/moses-seq --n 30000 --n-jobs 2
    python bench/moses.py optimize --run runs/moses-seq --budget 500      # qed and plogp
    python bench/moses.py collapse --molecules 20000 --main-run runs/moses-seq
    python bench/moses.py collapse --molecules 20000 --folder runs --only 3 4   # new arms, rows added
    python bench/moses.py temperature --run runs/moses-seq
    python bench/moses.py validate --run RUN --samples RUN/gen.csv    # choosing between runs: validation data only
    python bench/moses.py why-invalid --samples RUN/generated.csv      # why the invalid samples are invalid

``train`` is RECIPE (``vaekit train --data moses --model sequence --max-molecules 0 --epochs 3
--lr-schedule cosine``: every MOSES training molecule, three passes, the learning rate falling
along a half cosine), with ``--threads`` torch threads. ``evaluate`` draws ``--n`` molecules
from the prior (seeded, batched), computes the MOSES metrics (``moses_metrics``: validity,
unique@1k/@10k, novelty against all 1,584,663 training SMILES, IntDiv, filters; SNN/Frag/Scaf
against ``--reference-n`` test molecules; FCD as MOSES computes it, every valid sample against
the whole test split, or with ``--fcd-n N`` the first N valid samples against N test molecules,
the protocol of bench/moses_reference.py, whose row is the floor for that n) and writes
bench/results/moses.md with the published MOSES rows beside vaekit's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import torch

import vaekit
from vaekit.apps.molecules import fcd
from vaekit.apps.molecules import metrics as m
from vaekit.apps.molecules.chemistry import canonical_smiles, draw_grid, penalized_logp, qed, quiet_rdkit, to_mol
from vaekit.apps.molecules.corpus import read_molecules
from vaekit.apps.molecules.generate import DEFAULT_REDRAW, DEFAULT_TEMPERATURE, reconstruction_rate, sample_smiles
from vaekit.apps.molecules.jobs import load_vocabulary, sequence_config, train_sequence_run
from vaekit.apps.molecules.moses import moses_metrics, reference_stats
from vaekit.apps.molecules.optimize import optimize_property
from vaekit.apps.molecules.tokenizer import tokenize
from vaekit.data.molecules import load_moses, read_smiles
from vaekit.data.registry import data_dir
from vaekit.runs import folder

PUBLISHED = [  # MOSES repository README, 30k samples, mean of 3 runs (Polykovskiy et al. 2020)
    ("CharRNN (MOSES)", [0.975, 0.999, 0.073, 0.602, 1.000, 0.924, 0.856, 0.994, 0.842]),
    ("VAE, SMILES GRU (MOSES)", [0.977, 0.998, 0.099, 0.626, 0.999, 0.939, 0.856, 0.997, 0.695]),
    ("JTN-VAE (MOSES)", [1.000, 1.000, 0.395, 0.548, 0.997, 0.896, 0.855, 0.976, 0.914]),
]
KEYS = ["valid", "unique@10000", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test", "IntDiv", "Filters", "Novelty"]
SAMPLERS = {"plain": "every token as the decoder draws it",
            "grammar": "`--grammar`: only tokens that keep SMILES syntax and valence",
            "redraw": "`--redraw`: the decoder's tokens as drawn, a string that breaks SMILES syntax or valence, or whose "
                      "aromatic rings have no Kekulé structure, drawn again"}
HEAD = ["valid", "unique@10k", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test", "IntDiv", "filters", "novelty"]


# the 2-hour recipe of bench/results/choices.md: every training molecule, 3 passes, a cosine learning rate
RECIPE = "vaekit train --data moses --model sequence --max-molecules 0 --epochs 3 --lr-schedule cosine"


def train(args) -> None:
    """The recipe (RECIPE), with ``--threads`` torch threads, stopping after the epoch in which
    ``--max-minutes`` of training passed (if given)."""
    torch.set_num_threads(args.threads)
    cfg = sequence_config()
    cfg.training.progress = False
    cfg.training.epochs, cfg.training.lr_schedule = 3, "cosine"
    start = time.perf_counter()
    train_sequence_run(cfg, args.run, max_molecules=None, max_minutes=args.max_minutes)
    seconds = time.perf_counter() - start
    info = {"wall_s": seconds, "max_minutes": args.max_minutes, "threads": torch.get_num_threads(),
            "finished": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"}
    Path(args.run, "bench_train.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))


VARIANTS = {  # posterior-collapse comparison: (warmup_steps, free_bits, word_dropout, kl_cycles); the index names the run
    "no remedies (beta 1 from step 0)": (0, 0.0, 0.0, 0),
    "KL warm-up 100 steps + free bits 0.1 nats/dim": (100, 0.1, 0.0, 0),
    "warm-up + free bits + word dropout 0.25": (100, 0.1, 0.25, 0),
    # Fu et al. (2019): the weight rises over the first half of each of 4 cycles (no warm-up, no free bits)
    "cyclical annealing, 4 cycles + word dropout 0.25": (0, 0.0, 0.25, 4),
    "cyclical annealing, 4 cycles, alone": (0, 0.0, 0.0, 4),
    # controls for reading the two above: a warm-up without free bits, and cyclical annealing with them
    "KL warm-up 100 steps alone (no free bits)": (100, 0.0, 0.0, 0),
    "cyclical annealing, 4 cycles + free bits 0.1 + word dropout 0.25": (0, 0.1, 0.25, 4),
}


def _latent_use(run: Path, test: list[str], seed: int) -> dict:
    """KL, active units, I(x;z) of the last epoch; exact-match reconstruction of 1000 test molecules
    (greedy decoding of the posterior mean, compared as canonical SMILES); validity of 1000 prior samples."""
    model, vocab = vaekit.load(run), load_vocabulary(run)
    last = folder.read_metrics(run)[-1]
    molecules = random.Random(seed).sample(test, 1000)
    samples = sample_smiles(model, vocab, 1000, seed=seed, redraw=False)  # the decoder's own validity
    return {"kl": last["val_kl"], "active": last["val_active_units"], "mi": last["val_mutual_info"],
            "recon": last["val_recon"], "exact": reconstruction_rate(model, vocab, molecules, canonical_smiles),
            "valid": sum(to_mol(x) is not None for x in samples) / 1000}


def _collapse_run(args, i: int, warmup: int, free_bits: float, word_dropout: float, kl_cycles: int) -> tuple[Path, float]:
    """The folder of variant ``i``, trained unless it already holds weights; (folder, training seconds)."""
    run = Path(args.folder) / f"collapse-{i}"
    if not (run / "model.safetensors").is_file():
        cfg = sequence_config()
        cfg.training.epochs, cfg.training.warmup_steps, cfg.training.free_bits = 1, warmup, free_bits
        cfg.training.kl_cycles, cfg.training.progress = kl_cycles, False
        train_sequence_run(cfg, run, max_molecules=args.molecules, word_dropout=word_dropout)
    return run, sum(r["epoch_time_s"] for r in folder.read_metrics(run))


def _collapse_row(name: str, r: dict) -> str:
    return (f"| {name} | {r['kl']:.2f} | {r['active']} | {r['mi']:.2f} | {r['recon']:.2f} | {r['exact']:.3f} | "
            f"{r['valid']:.3f} |")


def _add_rows(out: Path, rows: list[str]) -> None:
    """Insert ``rows`` into the table of ``out`` after its last variant row (before the MOSES run's row)."""
    lines = out.read_text().splitlines()
    table = [i for i, line in enumerate(lines) if line.startswith("| ") and not line.startswith("| run |")]
    at = next((i for i in table if "the MOSES run" in lines[i]), table[-1] + 1)
    out.write_text("\n".join(lines[:at] + rows + lines[at:]) + "\n")


def collapse(args) -> None:
    """Train (unless trained) and measure the variants; ``--only`` runs the variants named by index and
    adds their rows, marked new with the date, to the table already in ``--out``."""
    test = load_moses("test", data_dir())
    chosen = args.only if args.only else range(len(VARIANTS))
    names, rows = list(VARIANTS), []
    for i in chosen:
        run, seconds = _collapse_run(args, i, *VARIANTS[names[i]])
        result = _latent_use(run, test, args.seed)
        print(f"{names[i]}: {seconds:.0f} s of training, {json.dumps(result)}", flush=True)
        mark = f" (new, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d}; {seconds:.0f} s)" if args.only else ""
        rows.append(_collapse_row(names[i] + mark, result))
    if args.only:
        _add_rows(Path(args.out), rows)
        print(Path(args.out).read_text())
        return
    if args.main_run:
        rows.append(_collapse_row(f"the MOSES run of moses.md ({args.main_run})",
                                  _latent_use(Path(args.main_run), test, args.seed)))
    lines = ["# Posterior collapse in vaekit's sequence VAE: with and without remedies", "",
             f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. Machine: {_machine()}.", "",
             f"Command: `python bench/moses.py collapse --molecules {args.molecules} --main-run {args.main_run}`. "
             f"Each variant: one epoch over a seeded draw of {args.molecules:,} MOSES training molecules (batch 128), "
             "otherwise the defaults (GRU 256, z 64); KL, active units (Cov_x E_q[z_d] > 0.01) and I(x;z) on the "
             "validation molecules after the last epoch; exact match: 1000 MOSES test molecules whose greedy decoding "
             "of the posterior mean is the same molecule; valid: 1000 prior samples.", "",
             "| run | KL (nats) | active units | I(x;z) | recon (nats) | exact-match reconstruction | valid samples |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    Path(args.out).write_text("\n".join(lines + rows) + "\n")
    print(Path(args.out).read_text())


def optimize(args) -> None:
    model, vocab = vaekit.load(args.run), load_vocabulary(args.run)
    doc = folder.read_run(args.run)
    train = read_molecules(folder.run_config(doc), doc["app"]["max_molecules"], progress=False)[0]
    lines = ["# Latent-space property optimisation with vaekit's sequence VAE (MOSES run)", "",
             f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. Machine: {_machine()}.", "",
             f"Command: `python bench/moses.py optimize --run {args.run} --budget {args.budget}` (= `vaekit optimize "
             f"RUN --property P --budget {args.budget}` with the other defaults: an MLP or ridge head (the better on held-out molecules) on the posterior means of "
             "4,000 scored training molecules, rounds of 20 gradient-ascent paths of 200 steps from the best molecules scored so far, decoded "
             "every 10 steps, the head refitted each round, until the budget is spent). plogp: logP - SA - ring penalty, each term standardised by its ZINC250k mean and "
             "standard deviation as in JT-VAE's code (the convention of Jin et al. 2018, Table 2); raw: the unstandardised sum.", ""]
    for prop in ("qed", "plogp"):
        start = time.perf_counter()
        r = optimize_property(model, vocab, train, prop, budget=args.budget, seed=args.seed)
        seconds = time.perf_counter() - start
        top = r.found[:3]
        lines += [f"## {prop}", "",
                  f"Head: {r.head_kind}, R^2 (held-out labelled molecules) {r.head_r2:.2f}; best labelled training molecule "
                  f"{r.best_labelled[1]:.3f} (`{r.best_labelled[0]}`); search: {r.oracle_calls} oracle calls, "
                  f"{r.invalid} invalid decodings, {len(r.found)} new molecules, {seconds:.0f} s.", "",
                  "| rank | value | QED | plogp raw | SMILES |", "| ---: | ---: | ---: | ---: | --- |"]
        lines += [f"| {k} | {v:.3f} | {qed(to_mol(s)):.3f} | {penalized_logp(to_mol(s), normalized=False):.2f} | `{s}` |"
                  for k, (s, v) in enumerate(top, 1)]
        if top:
            picture = Path(args.out).with_name(f"moses_optimize_{prop}.png")
            draw_grid([s for s, _ in top], picture, legends=[f"{prop} {v:.3f}" for _, v in top])
            lines += ["", f"![top 3 {prop}]({picture.name})", ""]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(Path(args.out).read_text())


def temperature(args) -> None:
    """valid, unique and novel fractions of samples drawn at several decoder temperatures (not the
    MOSES protocol, which samples at 1: lower temperatures trade diversity for validity)."""
    model, vocab = vaekit.load(args.run), load_vocabulary(args.run)
    train = load_moses("train", data_dir())
    lines = ["# Decoder temperature against validity (vaekit's sequence VAE, MOSES run)", "",
             f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. Machine: {_machine()}.", "",
             f"Command: `python bench/moses.py temperature --run {args.run} --n {args.n}`: {args.n} samples from "
             "N(0, I) per temperature (seed 0), tokens drawn from softmax(logits / T), no string redrawn. MOSES samples at T = 1 "
             "(the row of moses.md); the others are not the MOSES protocol.", "",
             "| T | valid | unique (of valid) | novel (of unique valid) |", "| ---: | ---: | ---: | ---: |"]
    for t in args.temperatures:
        smiles = sample_smiles(model, vocab, args.n, seed=0, temperature=t, redraw=False)
        valid = m.valid_canonical(smiles)
        unique = len(set(valid)) / max(len(valid), 1)
        lines.append(f"| {t:g} | {len(valid) / len(smiles):.3f} | {unique:.3f} | "
                     f"{m.novelty(valid, train, canonical=True):.3f} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(Path(args.out).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="phase", required=True)
    t = sub.add_parser("train")
    t.add_argument("--run", default="runs/moses-seq")
    t.add_argument("--max-minutes", type=float, default=None)
    t.add_argument("--threads", type=int, default=2)
    e = sub.add_parser("evaluate")
    e.add_argument("--run", default="runs/moses-seq")
    e.add_argument("--n", type=int, default=30000)
    e.add_argument("--reference-n", type=int, default=30000)
    e.add_argument("--fcd-n", type=int, default=0, help="FCD on the first N valid samples against N test molecules "
                   "(0: MOSES's protocol, every valid sample against the whole test split)")
    e.add_argument("--fcd-cache", default="runs/moses-test-chemnet.npz",
                   help="ChemNet statistics of the whole test split (computed once)")
    e.add_argument("--n-jobs", type=int, default=2)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", default="bench/results/moses.md")
    e.add_argument("--train-command", default=RECIPE, help="how RUN was trained, for the report")
    e.add_argument("--temperature", type=float, default=None,
                   help="tokens drawn from softmax(logits / T) (default: vaekit's DEFAULT_TEMPERATURE)")
    e.add_argument("--sampler", default="redraw" if DEFAULT_REDRAW else "plain", choices=list(SAMPLERS),
                   help="plain: the decoder's tokens as drawn; grammar: syntax and valence kept token by token; "
                   "redraw: malformed strings drawn again (default: vaekit's default sampler)")
    c = sub.add_parser("collapse")
    c.add_argument("--folder", default="runs")
    c.add_argument("--molecules", type=int, default=40000)
    c.add_argument("--main-run", default="runs/moses-seq")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", default="bench/results/moses_collapse.md")
    c.add_argument("--only", type=int, nargs="+", metavar="I",
                   help="run only these variants (indices into VARIANTS) and add their rows to --out's table")
    o = sub.add_parser("optimize")
    o.add_argument("--run", default="runs/moses-seq")
    o.add_argument("--budget", type=int, default=500)
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--out", default="bench/results/moses_optimize.md")
    v = sub.add_parser("validate", help="validity, uniqueness, novelty and FCD of samples against the run's own "
                       "validation molecules (held out of the training split): for choosing between runs")
    v.add_argument("--run", required=True)
    v.add_argument("--samples", required=True, nargs="+",
                   help="CSV (SMILES header) or text files of sampled SMILES, each scored against the same split")
    v.add_argument("--out", default=None, help="a JSON file for the result (default: RUN/validation_metrics.json)")
    tp = sub.add_parser("temperature")
    tp.add_argument("--run", default="runs/moses-seq")
    tp.add_argument("--n", type=int, default=10000)
    tp.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.8, 0.6])
    tp.add_argument("--out", default="bench/results/moses_temperature.md")
    w = sub.add_parser("why-invalid", help="count the invalid samples by the reason RDKit rejects them")
    w.add_argument("--samples", required=True, help="a CSV (SMILES header) or text file of sampled SMILES")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread: the machine is shared, and the numbers stay comparable
    {"train": train, "evaluate": evaluate, "collapse": collapse, "optimize": optimize,
     "temperature": temperature, "validate": validate, "why-invalid": why_invalid}[args.phase](args)


def invalid_reason(smiles: str):
    """None for a valid molecule, else why not: empty; an open branch or ring bond (by the string's
    syntax: unbalanced parentheses, a ring-bond label used an odd number of times); another parse
    error; or the sanitisation step that failed (kekulisation, valence, other)."""
    from rdkit import Chem  # the bench runs with vaekit[chem]

    if not smiles:
        return "empty"
    if to_mol(smiles) is not None:
        return None
    tokens = tokenize(smiles)
    depth, low = 0, 0
    for t in tokens:
        depth += (t == "(") - (t == ")")
        low = min(low, depth)
    if depth or low < 0:
        return "branch not closed or not opened"
    labels = [t for t in tokens if t.isdigit() or t.startswith("%")]
    if any(labels.count(x) % 2 for x in set(labels)):
        return "ring bond not closed"
    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
        if mol is None:
            return "other parse error"
        try:
            Chem.SanitizeMol(mol)
        except Chem.KekulizeException:
            return "aromatic ring not kekulisable"
        except Chem.AtomValenceException:
            return "valence exceeded"
        except ValueError:
            return "other sanitisation error"
    return "other"


def why_invalid(args) -> None:
    samples = read_smiles(args.samples)
    reasons = Counter(r for r in map(invalid_reason, samples) if r is not None)
    print(f"{len(samples)} samples, {sum(reasons.values())} invalid:")
    for reason, count in reasons.most_common():
        print(f"  {count:6d}  {reason}")


def validate(args) -> None:
    """The selection metrics of bench/results/choices.md, on no test molecule: the samples' validity,
    unique@10k, novelty against the whole training split, and FCD against the run's validation split
    (the molecules its config held out of MOSES's training split); one result per samples file."""
    run = Path(args.run)
    doc = folder.read_run(run)
    cfg = folder.run_config(doc)  # its data settings give the same validation split as its training had
    cfg.data.data_dir = str(data_dir())
    _, val, _, _ = read_molecules(cfg, doc.get("app", {}).get("max_molecules"), progress=False)
    train = load_moses("train", data_dir())  # novelty against the whole training file, as evaluate measures it
    val_stats = fcd.fcd_stats(list(val))
    results = {}
    for path in args.samples:
        samples = read_smiles(path)
        valid = m.valid_canonical(samples)
        start = time.perf_counter()
        result = {"samples": len(samples), "validation_molecules": len(val), "valid": len(valid) / max(len(samples), 1),
                  "unique@10000": m.unique_at_k(valid, 10000, canonical=True),
                  "novelty": m.novelty(valid, train, canonical=True),
                  "FCD/Val": fcd.fcd(valid, val, reference_stats=val_stats)}
        result["seconds"] = time.perf_counter() - start
        results[str(path)] = result
    out = Path(args.out) if args.out else run / "validation_metrics.json"
    text = json.dumps(results if len(results) > 1 else results[str(args.samples[0])], indent=1) + "\n"
    out.write_text(text)
    print(text)


def _sample(args, model, vocab) -> tuple[list[str], float, int]:
    start = time.perf_counter()
    counts = {}
    smiles = sample_smiles(model, vocab, args.n, seed=args.seed, temperature=args.temperature,
                           grammar=args.sampler == "grammar", redraw=args.sampler == "redraw", counts=counts)
    return smiles, time.perf_counter() - start, counts["drawn"]


def evaluate(args) -> None:
    model, vocab = vaekit.load(args.run), load_vocabulary(args.run)
    generated, sample_s, drawn = _sample(args, model, vocab)
    suffix = ("" if args.sampler == "plain" else f"_{args.sampler}") + ("" if args.temperature is None else f"_t{args.temperature:g}")
    Path(args.run, f"generated{suffix}.csv").write_text("SMILES\n" + "\n".join(generated) + "\n")
    train = load_moses("train", data_dir())
    test = load_moses("test", data_dir())
    # the reference of bench/moses_reference.py: the same seeded draw of test molecules
    draw = random.Random(args.seed).sample(range(len(test)), args.n + args.reference_n)
    reference = [test[i] for i in draw[args.n:]]
    if args.fcd_n:  # the first fcd_n valid samples against as many test molecules (moses_reference.py's floor)
        valid = [c for c in (canonical_smiles(s) for s in generated[: 3 * args.fcd_n]) if c is not None][: args.fcd_n]
        fcd_args = (valid, reference[: args.fcd_n], None)
    else:  # MOSES's protocol: every valid sample against the whole test split, its statistics cached
        valid = [c for c in (canonical_smiles(s) for s in generated) if c is not None]
        fcd_args = (valid, test, Path(args.fcd_cache))
    timings = {}
    start = time.perf_counter()
    ref = reference_stats(reference, n_jobs=args.n_jobs, with_fcd=False, timings=timings)
    result = moses_metrics(generated, train, ref, n_jobs=args.n_jobs, timings=timings)
    # in this process, after the rest: it once ran in a forked child, and when the kernel killed
    # that child for memory the parent waited on its queue for ever
    result["FCD/Test"], timings["FCD"] = _fcd(*fcd_args)
    result["metrics_s"], result["sample_s"], result["fcd_molecules"] = time.perf_counter() - start, sample_s, len(valid)
    result["drawn"] = drawn
    result["timings"] = timings
    Path(args.run, f"bench_metrics{suffix}.json").write_text(json.dumps(result, indent=1) + "\n")
    write_report(Path(args.out), args, result)
    print(Path(args.out).read_text())


def _fcd(generated, reference, cache) -> tuple[float, float]:
    """FCD of ``generated`` against ``reference`` and the seconds it took; the reference's ChemNet
    statistics are read from (or written to) ``cache`` when one is given."""
    import numpy as np

    start = time.perf_counter()
    stats = None
    if cache is not None and cache.is_file():
        with np.load(cache) as saved:
            if int(saved["n"]) == len(reference):
                stats = {"mean": saved["mean"], "cov": saved["cov"]}
    if stats is None:
        stats = fcd.fcd_stats(list(reference))
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, mean=stats["mean"], cov=stats["cov"], n=len(reference))
    return fcd.fcd(generated, reference, reference_stats=stats), time.perf_counter() - start


def _machine() -> str:
    cpu = "cpu"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, shared with other work; torch {torch.__version__}, RDKit {version('rdkit')}"


def _training_line(run: Path) -> str:
    records = folder.read_metrics(run)
    info = json.loads((run / "bench_train.json").read_text()) if (run / "bench_train.json").is_file() else {}
    doc = folder.read_run(run)
    max_molecules = doc.get("app", {}).get("max_molecules")
    drawn = "all the" if max_molecules is None else "a seeded draw of"
    seconds = sum(r["epoch_time_s"] for r in records)
    wall = f", {info['wall_s'] / 60:.1f} min wall including tokenising" if "wall_s" in info else ""
    threads = f", {info['threads']} thread(s)" if "threads" in info else ""
    last = records[-1] if records else {}
    t = doc["config"]["training"] if "config" in doc else {}
    return (f"Training: {len(records)} epochs over {drawn} {doc['data']['sizes']['train']:,} MOSES training molecules "
            f"(batch {t.get('batch_size', '?')}, lr {t.get('lr', '?')}, schedule {t.get('lr_schedule', '?')}), "
            f"{seconds / 60:.1f} min in the epochs (training and validation){wall}{threads}; model {doc['spec']}; "
            f"last epoch: val loss {last.get('val_loss', float('nan')):.2f}, KL {last.get('val_kl', float('nan')):.2f} "
            f"nats, {last.get('val_active_units', '?')} active units of {doc['spec']['latent_dim']}.")


def write_report(out: Path, args, result: dict) -> None:
    temperature = DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
    protocol = "" if temperature == 1 else " (MOSES's models sample at 1: not its protocol)"
    t_name = "" if args.temperature is None else f", T = {temperature:g}"
    if args.fcd_n:
        fcd_text = (f"FCD on the first {result['fcd_molecules']} valid samples against {args.fcd_n} of them (the "
                    "reference draw of bench/moses_reference.py, whose row is the floor at that size: real test "
                    "molecules score FCD 0.491 there)")
        floor = ("| MOSES test molecules vs test, same n (bench/results/moses_reference.md) | 1.000 | 1.000 | 0.491 "
                 "| 0.543 | 1.000 | 0.908 | 0.857 | 1.000 | 1.000 |")
    else:
        fcd_text = (f"FCD as MOSES computes it: all {result['fcd_molecules']:,} valid samples (canonical SMILES) "
                    "against the whole MOSES test split (176,074 molecules)")
        floor = "| MOSES README, Train (training vs test molecules) | 1.000 | 1.000 | 0.008 | 0.642 | 1.000 | 0.991 | 0.857 | 1.000 | 0.000 |"
    lines = [
        "# vaekit's sequence VAE on MOSES", "",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. Machine: {_machine()}.", "",
        f"Commands: `{args.train_command}`, then `python bench/moses.py evaluate --run {args.run} --n {args.n} "
        f"--reference-n {args.reference_n} --fcd-n {args.fcd_n} --n-jobs {args.n_jobs} --seed {args.seed} "
        f"--sampler {args.sampler}{'' if args.temperature is None else f' --temperature {args.temperature:g}'}`.", "",
        _training_line(Path(args.run)), "",
        (f"Sampling: {args.n} molecules from N(0, I), tokens drawn at temperature {temperature:g}{protocol} "
         f"({SAMPLERS[args.sampler]}; {result['drawn']:,} strings drawn), in {result['sample_s']:.0f} s. "
         f"Metrics: SNN/Frag/Scaf against {args.reference_n} MOSES test molecules (the published rows: the whole "
         f"test split); {fcd_text}; novelty against all 1,584,663 training SMILES. Metrics took "
         f"{result['metrics_s']:.0f} s."), "",
        "| model | " + " | ".join(HEAD) + " |", "| --- |" + " ---: |" * len(HEAD),
        f"| **vaekit sequence VAE (this run, {args.sampler} sampler{t_name})** | " + " | ".join(f"{result[k]:.3f}" for k in KEYS) + " |", floor,
    ]
    lines += [f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + " |" for name, values in PUBLISHED]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n" + _earlier(out, lines[0]))


def _earlier(out: Path, title: str) -> str:
    """What ``out`` already holds, under a rule and without its title, so that a new evaluation goes on
    top of the earlier ones instead of replacing them."""
    if not out.is_file():
        return ""
    old = out.read_text().splitlines()
    if old and old[0] == title:
        old = old[1:]
    return "\n---\n\nEarlier runs:\n" + "\n".join(old) + "\n"


if __name__ == "__main__":
    main()
