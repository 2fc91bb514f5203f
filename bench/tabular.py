"""Synthetic tables, side by side in one process: vaekit.TabularVAE vs SDV's TVAE and GaussianCopula.

Run (in a venv with sdv installed; never in the project venv):

    VAEKIT_DATA_DIR=/work/shared/datasets python bench/tabular.py --datasets adult
    python bench/tabular.py --datasets credit --no-tvae     # TVAE takes ~3 min per table

For each table: a fixed 80/20 split of the rows (numpy default_rng(0) permutation); every
method fits the 80%. Reported per method: fit time; SDMetrics QualityReport against the training
rows (column shapes, column pair trends, overall); ML efficacy (HistGradientBoostingClassifier
trained on as many synthetic rows as there are training rows, tested on the real 20%: F1 of the
positive class and ROC AUC; the same classifier trained on the real rows is the ceiling); and
privacy (median distance to the closest training record, DCR, of synthetic rows and of the real
holdout rows, on standardised numerics and one-hot categoricals).

Methods: ``vaekit`` (TabularVAE with its defaults), ``vaekit-target`` (the same, told which column
is the label: ``TabularVAE(target=...)`` models it last, given the rest of the row; SDV's
synthesizers get no such hint), ``sdv-gaussiancopula``, ``sdv-tvae``. ``--validation`` replaces
the holdout by 20% of the training rows (seed 1), for choosing settings without looking at the
holdout; ``--set key=value`` passes TabularVAE options.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from settings import cpu_name, parse_set  # bench/settings.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VAEKIT_DATA_DIR", ROOT.parent / "shared" / "datasets")) / "tabular"


def load_table(name: str):
    """(DataFrame, {column: numerical|categorical}, target column, positive value)."""
    if name == "adult":
        df = pd.read_csv(DATA / "adult" / "adult.csv")
        cols = json.loads((DATA / "adult" / "adult.json").read_text())["columns"]
        kinds = {c["name"]: "numerical" if c["type"] == "continuous" else "categorical" for c in cols}
        return df, kinds, "income", " >50K"
    if name == "credit":
        df = pd.read_csv(DATA / "credit-default" / "UCI_Credit_Card.csv").drop(columns=["ID"])
        categorical = {"SEX", "EDUCATION", "MARRIAGE", "PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6",
                       "default.payment.next.month"}
        kinds = {c: "categorical" if c in categorical else "numerical" for c in df.columns}
        return df, kinds, "default.payment.next.month", 1
    raise SystemExit(f"unknown dataset {name!r}; choose adult or credit")


def split(df: pd.DataFrame, seed: int = 0):
    perm = np.random.default_rng(seed).permutation(len(df))
    cut = int(round(0.8 * len(df)))
    return df.iloc[perm[:cut]].reset_index(drop=True), df.iloc[perm[cut:]].reset_index(drop=True)


# -- methods ------------------------------------------------------------------------------------
def fit_vaekit(train: pd.DataFrame, kinds: dict, args, target=None):
    import vaekit

    meta = {"columns": [{"name": c, "type": "continuous" if k == "numerical" else "categorical"} for c, k in kinds.items()]}
    options = {} if args.beta is None else {"beta": args.beta}
    options.update(args.options)
    if target is not None:
        options["target"] = target
    model = vaekit.TabularVAE(metadata=meta, epochs=args.epochs, verbose=False, **options)
    model.fit(train)
    if args.compare_argmax:  # the same fitted model, categories drawn vs their most probable value
        extra = vaekit.TabularVAE.load(model.save(Path("/tmp") / f"vaekit-bench-{os.getpid()}"))
        extra.categories = "argmax"
        EXTRA["vaekit (argmax categories)"] = lambda n: extra.sample(n, seed=1)
    return lambda n: model.sample(n, seed=1)


def fit_vaekit_target(train: pd.DataFrame, kinds: dict, args):
    """vaekit told which column is the label (TabularVAE(target=...)): it is modelled last, given the rest."""
    return fit_vaekit(train, kinds, args, target=args.target_column)


EXTRA: dict = {}


def _sdv_metadata(train: pd.DataFrame, kinds: dict):
    from sdv.metadata import Metadata

    return Metadata.load_from_dict({"tables": {"table": {"columns": {c: {"sdtype": k} for c, k in kinds.items()}}}})


def _fit_sdv(synth, train):
    """SDV 2.0 takes and returns {table name: DataFrame}; older versions a DataFrame."""
    import sdv

    if int(sdv.__version__.split(".")[0]) >= 2:
        synth.fit({"table": train})
        return lambda n: synth.sample(n)["table"]
    synth.fit(train)
    return synth.sample


def fit_tvae(train, kinds, args):
    from sdv.single_table import TVAESynthesizer

    synth = TVAESynthesizer(_sdv_metadata(train, kinds))
    return _fit_sdv(synth, train)


def fit_copula(train, kinds, args):
    from sdv.single_table import GaussianCopulaSynthesizer

    synth = GaussianCopulaSynthesizer(_sdv_metadata(train, kinds))
    return _fit_sdv(synth, train)


METHODS = {"vaekit": fit_vaekit, "vaekit-target": fit_vaekit_target, "sdv-tvae": fit_tvae, "sdv-gaussiancopula": fit_copula}


# -- measures -----------------------------------------------------------------------------------
def quality(real: pd.DataFrame, synth: pd.DataFrame, kinds: dict) -> dict:
    from sdmetrics.reports.single_table import QualityReport

    report = QualityReport()
    report.generate(real, synth, {"columns": {c: {"sdtype": k} for c, k in kinds.items()}}, verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    return {"quality": float(report.get_score()), "column_shapes": float(props["Column Shapes"]),
            "column_pair_trends": float(props["Column Pair Trends"])}


def _features(df: pd.DataFrame, kinds: dict, target: str, reference: pd.DataFrame):
    X = df.drop(columns=[target]).copy()
    for c, k in kinds.items():
        if c != target and k == "categorical":
            X[c] = pd.Categorical(X[c].astype(str), categories=sorted(reference[c].astype(str).unique()))
    return X


def efficacy(fit_rows: pd.DataFrame, test: pd.DataFrame, kinds: dict, target: str, positive, reference) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import f1_score, roc_auc_score

    y = (fit_rows[target].astype(str) == str(positive)).to_numpy()
    y_test = (test[target].astype(str) == str(positive)).to_numpy()
    if y.all() or not y.any():
        return {"f1": float("nan"), "auc": float("nan")}
    clf = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    clf.fit(_features(fit_rows, kinds, target, reference), y)
    X_test = _features(test, kinds, target, reference)
    return {"f1": float(f1_score(y_test, clf.predict(X_test))), "auc": float(roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1]))}


class DCR:
    """Distance to the closest training record on standardised numerics + one-hot categoricals."""

    def __init__(self, train: pd.DataFrame, kinds: dict):
        from sklearn.neighbors import NearestNeighbors

        self.kinds = kinds
        self.num = [c for c, k in kinds.items() if k == "numerical"]
        self.cat = [c for c, k in kinds.items() if k == "categorical"]
        self.mean = train[self.num].astype(float).mean()
        self.std = train[self.num].astype(float).std().replace(0, 1)
        self.cats = {c: sorted(train[c].astype(str).unique()) for c in self.cat}
        self.nn = NearestNeighbors(n_neighbors=1).fit(self.encode(train))

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        parts = [((df[self.num].astype(float) - self.mean) / self.std).fillna(0).to_numpy()]
        for c in self.cat:
            values = df[c].astype(str).to_numpy()
            parts.append((values[:, None] == np.array(self.cats[c])[None, :]).astype(float))
        return np.concatenate(parts, axis=1)

    def median(self, df: pd.DataFrame, n: int = 3000) -> float:
        rows = df.sample(min(n, len(df)), random_state=0)
        return float(np.median(self.nn.kneighbors(self.encode(rows))[0][:, 0]))


def score(train, synth, test, kinds, target, positive, df, dcr, args) -> dict:
    nan = {"quality": float("nan"), "column_shapes": float("nan"), "column_pair_trends": float("nan")}
    return {**(nan if args.no_quality else quality(train, synth, kinds)),
            **efficacy(synth, test, kinds, target, positive, df), "dcr_median": dcr.median(synth)}


def machine() -> dict:
    try:
        import sdv

        sdv_version = sdv.__version__
    except ImportError:
        sdv_version = "not installed"
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_avg_1_5_15min_at_end": " / ".join(f"{v:.1f}" for v in os.getloadavg()), "torch": torch.__version__,
            "sdv": sdv_version, "pandas": pd.__version__, "python": platform.python_version()}


def run(name: str, methods: list[str], args) -> dict:
    df, kinds, target, positive = load_table(name)
    args.target_column = target
    train, test = split(df)
    if args.validation:  # choose settings here: the holdout stays unseen, the test set is 20% of train
        train, test = split(train, seed=1)
    dcr = DCR(train, kinds)
    out = {"dataset": name, "rows_train": len(train), "rows_test": len(test), "validation": bool(args.validation),
           "vaekit_options": args.options, "methods": {}}
    out["real"] = {**efficacy(train, test, kinds, target, positive, df), "dcr_median": dcr.median(test)}
    print(f"[{name}] real ceiling: {out['real']}", flush=True)
    for method in methods:
        torch.manual_seed(0)
        started = time.perf_counter()
        sampler = METHODS[method](train, kinds, args)
        fit_s = time.perf_counter() - started
        synth = sampler(len(train))
        result = {"fit_s": fit_s, **score(train, synth, test, kinds, target, positive, df, dcr, args)}
        out["methods"][method] = result
        print(f"[{name}] {method}: " + ", ".join(f"{k} {v:.3f}" for k, v in result.items()), flush=True)
        for label, extra in list(EXTRA.items()):
            synth = extra(len(train))
            result = {"fit_s": fit_s, **score(train, synth, test, kinds, target, positive, df, dcr, args)}
            out["methods"][label] = result
            print(f"[{name}] {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in result.items()), flush=True)
        EXTRA.clear()
    return out


def markdown(results: list[dict], info: dict, command: str, note: str = "") -> str:
    lines = ["# Synthetic tables: vaekit.TabularVAE vs SDV", "", f"Command: `{command}`", "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), ""] + ([note, ""] if note else [])
    for r in results:
        held = "validation rows carved from the training rows" if r.get("validation") else "holdout rows"
        lines += [f"## {r['dataset']} ({r['rows_train']} training rows, {r['rows_test']} {held})", "",
                  "| method | fit s | quality | shapes | pair trends | F1 | AUC | DCR median (synthetic) | ratio fit s vs vaekit |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        base = r["methods"].get("vaekit", {}).get("fit_s")
        for m, v in r["methods"].items():
            ratio = f"{v['fit_s'] / base:.2f}" if base else "-"
            lines.append(f"| {m} | {v['fit_s']:.1f} | {v['quality']:.3f} | {v['column_shapes']:.3f} | "
                         f"{v['column_pair_trends']:.3f} | {v['f1']:.3f} | {v['auc']:.3f} | {v['dcr_median']:.3f} | {ratio} |")
        real = r["real"]
        lines += [f"| real rows (ceiling) | - | - | - | - | {real['f1']:.3f} | {real['auc']:.3f} | "
                  f"{real['dcr_median']:.3f} (holdout) | - |", ""]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="adult,credit")
    p.add_argument("--methods", default="vaekit,vaekit-target,sdv-gaussiancopula,sdv-tvae")
    p.add_argument("--no-tvae", action="store_true", help="skip SDV's TVAE (about 3 minutes per table)")
    p.add_argument("--epochs", type=int, default=None, help="vaekit epochs (default: its own rule)")
    p.add_argument("--beta", type=float, default=None, help="vaekit KL weight (default: its own)")
    p.add_argument("--compare-argmax", action="store_true", help="also score vaekit with categories='argmax'")
    p.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="a TabularVAE option, VALUE read as JSON where it parses (repeatable)")
    p.add_argument("--validation", action="store_true",
                   help="hold out 20%% of the training rows instead (for choosing settings; the holdout stays unseen)")
    p.add_argument("--no-quality", action="store_true", help="skip the SDMetrics quality report")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: up to 2)")
    p.add_argument("--note", default="", help="a line for the results file (e.g. what else ran on the machine)")
    p.add_argument("--out", default=None, help="results file stem (default bench/results/tabular-<datasets>)")
    args = p.parse_args(argv)
    args.options = parse_set(args.options)
    torch.set_num_threads(args.threads or min(2, os.cpu_count() or 1))
    methods = [m for m in args.methods.split(",") if not (args.no_tvae and m == "sdv-tvae")]
    datasets = args.datasets.split(",")
    load_at_start = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    results = [run(d, methods, args) for d in datasets]
    info = {**machine(), "load_avg_at_start": load_at_start}
    stem = Path(args.out) if args.out else ROOT / "bench" / "results" / f"tabular-{'-'.join(datasets)}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    given = list(argv if argv is not None else sys.argv[1:])
    given = ["'(the note below)'" if i and given[i - 1] == "--note" else a for i, a in enumerate(given)]
    command = "python bench/tabular.py " + " ".join(given)
    doc = {"machine": info, "command": command, "note": args.note, "results": results}
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(results, info, command, args.note))
    print(f"wrote {stem}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
