"""The argument parser of ``vaekit``: every subcommand, option and positional with its help and default.

Built only from the standard library and :mod:`vaekit.config` (no torch, numpy, pandas, scikit-learn
or matplotlib), so ``vaekit --help`` and an argument error answer in a fraction of a second.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

import vaekit
from vaekit.cli.flags import TRAIN_FLAGS

RUN_HELP = "a run folder written by 'vaekit train'"
INPUTS_HELP = "a .csv, .npy or image folder, or a split of the run's data: train | val | test (default: test)"


class _Parser(argparse.ArgumentParser):
    """No abbreviated flags: argparse would take 'train --epoch 3' as --epochs 3 and start a run, and
    an abbreviation that works today becomes an error when a longer flag with its prefix is added."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str):  # one line, exit 2, no usage dump
        self.exit(2, f"vaekit: error: {message} (see '{self.prog} --help')\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown as '(default: X)' where an option has one that is not already in its help."""

    def _get_help_string(self, action):
        text = action.help or ""
        # 0 is a default worth showing; None, False (a switch), [] and SUPPRESS are not
        shown = not (action.default is None or action.default is False or action.default == []
                     or action.default == argparse.SUPPRESS)
        if "(default" in text or not shown or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


def _version() -> str:
    try:  # read from the installed metadata: importing torch would cost seconds
        torch = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch = "not installed"
    return f"vaekit {vaekit.__version__} (torch {torch}, python {sys.version.split()[0]})"


def _common() -> argparse.ArgumentParser:
    """Options every subcommand takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--no-progress", action="store_true",
                        help="no progress bars (they are off anyway when stderr is not a terminal)")
    return common


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vaekit", description="Train, measure and use variational autoencoders.",
                epilog="'vaekit COMMAND --help' lists a command's options and their defaults; "
                       "'vaekit train' with no options trains on the digits that ship with scikit-learn.",
                formatter_class=_Help)
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, parents=[_common()], formatter_class=_Help)

    _add_training(command)
    _add_generation(command)
    _add_measurement(command)
    _add_tables(command)
    _add_viewing(command)
    _add_molecules(command)
    return p


def _add_config_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="any config setting, e.g. training.lr=3e-4 or data.val_fraction=0.2")
    parser.add_argument("--config", metavar="FILE", help="a .json or .yaml config (a run's config.json works too)")
    group = parser.add_argument_group("settings (each sets one config key)")
    for f in TRAIN_FLAGS:
        if f.key not in skip:
            group.add_argument(f.flag, dest=f.key, default=None, metavar=f.metavar, help=f.help)


def _add_training(command) -> None:
    t = command("train", "train a VAE and write a run folder")
    _add_config_flags(t)
    t.add_argument("--out", metavar="DIR", help="run folder (default: runs/<date-time>)")
    t.add_argument("--resume", metavar="RUN", help="continue a run from its last checkpoint (only --epochs may change)")
    tab = t.add_argument_group("tables (--model tabular)")
    tab.add_argument("--metadata", metavar="FILE",
                     help="a JSON column list ({columns: [{name, type}]}) overriding the inferred types")
    tab.add_argument("--target", metavar="COLUMN", help="a categorical column to model last, given the rest of the "
                     "row (e.g. the label a classifier will learn from the synthetic rows)")
    tab.add_argument("--model-every-column", action="store_true",
                     help="also model columns that are a function of a categorical column (read off it by default)")
    _add_sequence_training(t)

    sw = command("sweep", "train one run per beta and plot distortion against rate")
    _add_config_flags(sw, skip=("training.beta",))
    sw.add_argument("--beta", dest="betas", required=True, metavar="BETAS",
                    help="comma-separated KL weights, e.g. 0.25,0.5,1,2,4,8")
    sw.add_argument("--out", required=True, metavar="DIR", help="folder for the runs, sweep.json and the plots")


def _add_generation(command) -> None:
    s = command("sample", "draw new examples from the prior")
    s.add_argument("run", metavar="RUN", help=RUN_HELP)
    s.add_argument("-n", type=int, default=64, metavar="N", help="how many examples")
    s.add_argument("--out", metavar="FILE", help=".png grid or .npy array (default: RUN/samples.png)")
    s.add_argument("--label", metavar="CLASS", help="conditional runs: the class to draw (index or name)")
    s.add_argument("--grid", action="store_true", help="conditional runs: one row per class, N // classes per row")
    s.add_argument("--seed", type=int, default=0, metavar="SEED", help="random seed of the draws")
    s.add_argument("--temperature", type=float, default=None, metavar="T",
                   help="sequence runs: tokens drawn from softmax(logits / T); 1 is the model's own distribution "
                   "(default: vaekit.apps.molecules.generate.DEFAULT_TEMPERATURE)")
    s.add_argument("--grammar", action="store_true",
                   help="SMILES runs: draw each token only among those that keep the SMILES syntax and every atom's "
                   "valence (more valid molecules, but further from the data: a higher FCD; default: off)")
    s.add_argument("--redraw", action=argparse.BooleanOptionalAction, default=None,
                   help="SMILES runs: draw a string again (a new z) when it breaks the SMILES syntax or an atom's valence, "
                   "so every string returned is well formed and the rest keep the decoder's distribution "
                   "(default: vaekit.apps.molecules.generate.DEFAULT_REDRAW)")

    r = command("reconstruct", "inputs beside their reconstructions")
    r.add_argument("run", metavar="RUN", help=RUN_HELP)
    r.add_argument("-n", type=int, default=16, metavar="N", help="how many inputs")
    r.add_argument("--data", metavar="INPUTS", help=INPUTS_HELP)
    r.add_argument("--out", metavar="FILE", help=".png or .npy (default: RUN/reconstructions.png)")

    i = command("interpolate", "decode the path between two inputs' latents")
    i.add_argument("run", metavar="RUN", help=RUN_HELP)
    i.add_argument("--pair", nargs="+", metavar="I,J", help="two test-split indices, e.g. 3,17 (default: drawn with "
                   "--seed); for a sequence run two molecules: --pair SMILES_A SMILES_B")
    i.add_argument("--method", default="both", choices=["linear", "spherical", "both"],
                   help="straight line or great circle (slerp) between the two posterior means")
    i.add_argument("--steps", type=int, default=10, metavar="N", help="images per path, both ends included")
    i.add_argument("--seed", type=int, default=0, metavar="SEED", help="random seed of the pair")
    i.add_argument("--out", metavar="FILE", help=".png (default: RUN/interpolation.png)")

    v = command("traverse", "vary one latent dimension at a time")
    v.add_argument("run", metavar="RUN", help=RUN_HELP)
    v.add_argument("--dims", metavar="DIMS", help="latent dimensions, e.g. 0,1,2, or 'all' (default: those active "
                   "by both the covariance test and KL > 0.1 nats on the test split, the largest KL first)")
    v.add_argument("--index", type=int, metavar="I", help="test example to start from (default: the prior mean)")
    v.add_argument("--steps", type=int, default=9, metavar="N", help="images per row")
    v.add_argument("--span", type=float, default=3.0, metavar="S", help="each row runs from -S to +S around the start")
    v.add_argument("--out", metavar="FILE", help=".png (default: RUN/traverse.png)")


def _add_measurement(command) -> None:
    ev = command("eval", "ELBO, reconstruction, KL and the latent code's use on a split")
    ev.add_argument("run", metavar="RUN", help=RUN_HELP)
    ev.add_argument("--split", default="test", choices=["train", "val", "test"], help="which split")
    ev.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ev.add_argument("--nll-samples", type=int, default=0, metavar="K",
                    help="add the importance-sampled NLL with K samples per example, e.g. 5000 (default: 0, off)")
    ev.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N examples of the split")
    ev.add_argument("--compile", action="store_true",
                    help="torch.compile the NLL's inner loop: a one-off compile of some seconds, then faster")

    e = command("encode", "write posterior means of data")
    e.add_argument("run", metavar="RUN", help=RUN_HELP)
    e.add_argument("inputs", nargs="?", metavar="FILE", help="the same as --data (e.g. a SMILES file for a sequence run)")
    e.add_argument("--data", metavar="INPUTS", help=INPUTS_HELP)
    e.add_argument("--out", metavar="FILE", help=".npy or .csv (default: RUN/encoded.npy)")

    sc = command("score", "anomaly scores of data (higher = more anomalous)")
    sc.add_argument("run", metavar="RUN", help=RUN_HELP)
    sc.add_argument("--data", metavar="INPUTS", help=INPUTS_HELP)
    sc.add_argument("--method", default="nll", choices=["nll", "elbo", "recon"],
                    help="nll: -log p(x) by importance sampling; elbo: one-draw -ELBO; recon: squared error")
    sc.add_argument("--num-samples", type=int, default=100, metavar="K", help="importance samples for --method nll")
    sc.add_argument("--out", metavar="FILE", help=".csv or .npy (default: RUN/scores.csv)")


def _add_tables(command) -> None:
    im = command("impute", "fill missing values (NaN or empty cells) with the model")
    im.add_argument("run", metavar="RUN", help=RUN_HELP)
    im.add_argument("--data", required=True, metavar="FILE", help="a .csv or .npy with NaN or empty cells where "
                    "values are missing")
    im.add_argument("--method", default="importance", choices=["importance", "pseudo-gibbs", "metropolis"],
                    help="importance: the conditional mean E[x_m | x_o] (least squared error); pseudo-gibbs, "
                         "metropolis: iterate the model")
    im.add_argument("--iters", type=int, default=50, metavar="N",
                    help="sweeps (for importance: pseudo-Gibbs sweeps before its fit)")
    im.add_argument("--seed", type=int, default=0, metavar="SEED", help="random seed")
    im.add_argument("--out", metavar="FILE", help=".csv or .npy (default: RUN/imputed.<suffix of --data>)")

    sy = command("synth", "synthetic rows from a tabular run (vaekit train --model tabular)")
    sy.add_argument("run", metavar="RUN", help=RUN_HELP)
    sy.add_argument("-n", type=int, default=1000, metavar="N", help="how many rows")
    sy.add_argument("--out", metavar="FILE", help=".csv (default: RUN/synthetic.csv)")
    sy.add_argument("--condition", action="append", default=[], metavar="COLUMN=VALUE",
                    help="only rows with this value (categorical columns; repeatable)")
    sy.add_argument("--seed", type=int, default=0, metavar="SEED", help="random seed")


def _add_viewing(command) -> None:
    rp = command("report", "write RUN/report.html: one self-contained page (settings, ELBO split, KL per "
                 "dimension and both readings of 'active', every picture; for a sequence run: validity, "
                 "uniqueness and novelty of samples, molecule grids, reconstructions, interpolation)")
    rp.add_argument("run", metavar="RUN", help=RUN_HELP)
    rp.add_argument("--no-measure", action="store_true",
                    help="skip the test-split diagnostics (use the metrics records only; no data needed)")
    rp.add_argument("--compare", metavar="RUN2", help="another run to show side by side, e.g. a VAE beside --model ae")

    sv = command("serve", "explore the latent space in the browser: a slider per active dimension, "
                 "the latent map, paths between test examples")
    sv.add_argument("run", metavar="RUN", help=RUN_HELP)
    sv.add_argument("--port", type=int, default=8000, metavar="N", help="port to listen on (0: any free port)")
    sv.add_argument("--host", default="127.0.0.1", metavar="HOST",
                    help="address to listen on; 127.0.0.1 keeps the explorer private to this machine")
    sv.add_argument("--open", action="store_true", help="open the page in the default web browser")


def _add_sequence_training(t: argparse.ArgumentParser) -> None:
    mol = t.add_argument_group("molecules (--model sequence: a GRU VAE over SMILES; --data moses or a file of SMILES; "
                               "defaults for a 2-core CPU: 250k MOSES molecules, 2 epochs, --hidden 256, "
                               "--latent-dim 64, --warmup-steps 2000, --free-bits 0.1)")
    mol.add_argument("--tokens", choices=["smiles", "kekule", "selfies", "chars"], help="SMILES atoms; kekule: "
                     "SMILES in Kekulé form (explicit ring double bonds, nothing left to kekulise); SELFIES (every "
                     "decoding is a valid molecule); chars: the characters of lines of any text (default: smiles)")
    mol.add_argument("--max-molecules", type=int, metavar="N", help="training molecules used, a seeded draw "
                     "(default: 250000 for moses, all of a file; 0: all)")
    mol.add_argument("--embed-dim", type=int, metavar="N", help="token embedding width (default: 64)")
    mol.add_argument("--bidirectional", action="store_true", help="a bidirectional GRU encoder")
    mol.add_argument("--word-dropout", type=float, metavar="P", help="decoder inputs replaced by <unk> with "
                     "probability P while training (Bowman et al. 2016; default: 0)")
    mol.add_argument("--max-len", type=int, metavar="N", help="longest token sequence kept (default: the longest "
                     "training molecule); longer ones are skipped and counted")
    mol.add_argument("--max-minutes", type=float, metavar="M", help="no new epoch after M minutes of training")


def _add_molecules(command) -> None:
    o = command("optimize", "sequence runs: search the latent space for molecules with a high property")
    o.add_argument("run", metavar="RUN", help=RUN_HELP)
    o.add_argument("--property", required=True, choices=["qed", "logp", "plogp"],
                   help="QED; Crippen logP; penalized logP (logP - SA - ring penalty, each standardised as in JT-VAE)")
    o.add_argument("--budget", type=int, default=500, metavar="N", help="oracle calls (RDKit property evaluations) "
                   "the search may spend")
    o.add_argument("--labelled", type=int, default=4000, metavar="N",
                   help="training molecules scored to fit the property head")
    o.add_argument("--starts", type=int, default=20, metavar="N", help="ascent paths, from the best labelled molecules")
    o.add_argument("--steps", type=int, default=200, metavar="N", help="gradient steps per path")
    o.add_argument("--seed", type=int, default=0, metavar="SEED", help="random seed")
    o.add_argument("--out", metavar="FILE", help=".png of the top 3 (default: RUN/optimize-PROPERTY.png)")
