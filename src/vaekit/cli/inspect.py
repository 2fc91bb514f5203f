"""``vaekit eval``, ``encode`` and ``score``: numbers about a run's model on data."""

from __future__ import annotations

import json

from vaekit.apps.molecules.jobs import is_sequence_run
from vaekit.apps.anomaly import score_examples
from vaekit.cli import molecules
from vaekit.cli.console import progress_wanted
from vaekit.cli.output import eval_lines, out_path, write_columns
from vaekit.errors import ConfigError
from vaekit.measure.evaluation import posterior_means
from vaekit.runs.evaluate import evaluate_run, run_data, run_inputs


def evaluate(args) -> int:
    if is_sequence_run(args.run):
        return molecules.evaluate(args)
    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    result = evaluate_run(args.run, args.split, num_samples=args.nll_samples, limit=args.limit,
                          compile=args.compile, progress=progress_wanted(args) and not args.json)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        lines = eval_lines(args.run, result)
        if "error" in result:  # a semi-supervised (m2) run: its classifier beside the ELBO
            lines[1:1] = [f"  {args.split + ' error (classifier q(y|x))':<38} {result['error']:>10.2%}",
                          f"  {'ELBO with the labels hidden':<38} {result['elbo_unlabelled']:>10.3f}"] + (
                [f"  {'log p(x), the labels summed over':<38} {result['log_px_marginal']:>10.3f}"]  # k draws a class
                if "log_px_marginal" in result else [])
        print("\n".join(lines))
    return 0


def encode(args) -> int:
    if is_sequence_run(args.run):
        return molecules.encode(args)
    model, cfg, data = run_data(args.run)
    x, y = run_inputs(model, cfg, data, args.data or args.inputs)
    z = posterior_means(model, x, y).numpy()
    out = write_columns(out_path(args, "encoded.npy"), z, [f"z{i}" for i in range(z.shape[1])])
    print(f"wrote {out} ({z.shape[0]} x {z.shape[1]} posterior means)")
    return 0


def score(args) -> int:
    if is_sequence_run(args.run):
        molecules.not_for_sequences("vaekit score")
    model, cfg, data = run_data(args.run)
    x, y = run_inputs(model, cfg, data, args.data)
    scores = score_examples(model, x, y, method=args.method, num_samples=args.num_samples).numpy()
    out = write_columns(out_path(args, "scores.csv"), scores, ["anomaly_score"])
    print(f"wrote {out} ({scores.shape[0]} {args.method} anomaly scores; higher = more anomalous)")
    return 0
