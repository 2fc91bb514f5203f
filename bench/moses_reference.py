"""The MOSES metrics of real molecules: a sanity row for vaekit's metric code, timed.

"Generated" = N molecules drawn (seeded) from the MOSES *test* split; novelty against the whole
training split; SNN/Frag/Scaf against a disjoint draw of the test split (R molecules); FCD on
the first F of each (ChemNet is ~50 ms a molecule on a 2-core CPU). Real test molecules should
score valid 1, unique ~1, novelty ~1 (the splits are disjoint), filters 1 (MOSES built its
data with them), Frag and Scaf near 1 and a small FCD.

    python bench/moses_reference.py --n 30000 --reference-n 30000 --fcd-n 5000 --n-jobs 2

Writes bench/results/moses_reference.md. Needs rdkit and fcd, and the MOSES files in
$VAEKIT_DATA_DIR/molecules/moses (downloaded when --download is given).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import sys
import time
from multiprocessing import get_context
from importlib.metadata import version
from pathlib import Path

from vaekit.apps.molecules import fcd
from vaekit.apps.molecules.moses import moses_metrics, reference_stats
from vaekit.data.molecules import load_moses
from vaekit.data.registry import data_dir

MOSES_TRAIN_ROW = ("MOSES README, Train (train vs test)", {
    "valid": 1.0, "unique@1000": 1.0, "unique@10000": 1.0, "FCD/Test": 0.008, "SNN/Test": 0.642,
    "Frag/Test": 1.000, "Scaf/Test": 0.991, "IntDiv": 0.857, "IntDiv2": 0.851, "Filters": 1.0, "Novelty": 0.0})
KEYS = ["valid", "unique@1000", "unique@10000", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test",
        "IntDiv", "IntDiv2", "Filters", "Novelty"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30000, help="test molecules scored as 'generated'")
    parser.add_argument("--reference-n", type=int, default=30000, help="disjoint test molecules as the reference")
    parser.add_argument("--fcd-n", type=int, default=5000, help="molecules of each set that FCD uses")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--out", default="bench/results/moses_reference.md")
    args = parser.parse_args()

    root = data_dir()
    start = time.perf_counter()
    train = load_moses("train", root, args.download)
    test = load_moses("test", root, args.download)
    load_s = time.perf_counter() - start
    draw = random.Random(args.seed).sample(range(len(test)), args.n + args.reference_n)
    generated = [test[i] for i in draw[:args.n]]
    reference = [test[i] for i in draw[args.n:]]

    timings = {}
    start = time.perf_counter()
    # ChemNet (single process, torch threads) runs beside the RDKit work (n_jobs processes).
    fcd_queue = get_context("fork").Queue()
    fcd_job = get_context("fork").Process(target=_fcd_job, args=(generated[:args.fcd_n], reference[:args.fcd_n], fcd_queue))
    fcd_job.start()
    ref = reference_stats(reference, n_jobs=args.n_jobs, with_fcd=False, timings=timings)
    print(f"reference statistics: {timings}", file=sys.stderr, flush=True)
    result = moses_metrics(generated, train, ref, n_jobs=args.n_jobs, timings=timings)
    print(f"metrics without FCD: {result} {timings}", file=sys.stderr, flush=True)
    result["FCD/Test"], timings["FCD (both sets, beside the rest)"] = fcd_queue.get()
    fcd_job.join()
    total_s = time.perf_counter() - start
    write_report(Path(args.out), args, result, timings, load_s, total_s)
    print(Path(args.out).read_text())


def _fcd_job(generated, reference, queue) -> None:
    start = time.perf_counter()
    value = fcd.fcd(generated, reference)
    print(f"FCD {value:.4f}", file=sys.stderr, flush=True)
    queue.put((value, time.perf_counter() - start))


def write_report(out: Path, args, result: dict, timings: dict, load_s: float, total_s: float) -> None:
    lines = [
        "# MOSES metrics of real molecules (sanity row)", "",
        (f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. Machine: {platform.machine()}, "
        f"{os.cpu_count()} CPU cores ({platform.processor() or 'cpu'}), shared with other work; "
        f"torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}, n_jobs {args.n_jobs}. "
        f"RDKit {version('rdkit')}, fcd {version('fcd')}."), "",
        (f"Command: `python bench/moses_reference.py --n {args.n} --reference-n {args.reference_n} "
        f"--fcd-n {args.fcd_n} --n-jobs {args.n_jobs} --seed {args.seed}`"), "",
        (f"'Generated': {args.n} molecules drawn from the MOSES test split (seed {args.seed}); reference for "
        f"SNN/Frag/Scaf: {args.reference_n} other test molecules; FCD: the first {args.fcd_n} of each; "
        "novelty: against all 1,584,663 training SMILES. Filters: MOSES's rules with RDKit's PAINS catalog, "
        "without MOSES's MCF SMARTS (see apps/molecules/filters.py)."), "",
        "| row | " + " | ".join(KEYS) + " |", "| --- |" + " ---: |" * len(KEYS),
        "| vaekit, test sample vs test | " + " | ".join(f"{result.get(k, float('nan')):.3f}" for k in KEYS) + " |",
        f"| {MOSES_TRAIN_ROW[0]} | " + " | ".join(f"{MOSES_TRAIN_ROW[1][k]:.3f}" for k in KEYS) + " |", "",
        f"Wall time: {total_s:.0f} s for the metrics (loading the splits: {load_s:.0f} s).", "",
        "| step | seconds |", "| --- | ---: |",
    ]
    lines += [f"| {key} | {seconds:.1f} |" for key, seconds in timings.items()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
