"""``vaekit sample``, ``reconstruct``, ``interpolate`` and ``traverse``: pictures (or arrays) from a run.

Their default files are the run folder's own names (samples.png, reconstructions.png,
interpolation.png), so a command redraws the picture that training drew.
"""

from __future__ import annotations

import torch

from vaekit.apps.molecules.jobs import is_sequence_run
from vaekit.cli import molecules
from vaekit.cli.output import int_arg, out_path, save_array_or_grid
from vaekit.errors import ConfigError
from vaekit.measure.diagnostics import ACTIVE_THRESHOLD, TRAVERSE_KL, dims_by_kl, latent_diagnostics
from vaekit.measure.latent import reconstruct as reconstruct_inputs
from vaekit.runs import folder
from vaekit.runs.evaluate import run_data, run_inputs
from vaekit.runs.pictures import (INTERPOLATION, RECONSTRUCTIONS, SAMPLES, TRAVERSE, save_interpolation,
                                  sample_examples, save_reconstructions, save_traverse)



def _label_index(label: str, model, class_names) -> int:
    if not model.conditional:
        raise ConfigError("--label needs a conditional run (train with --model cvae)")
    if class_names and label in class_names:
        return class_names.index(label)
    idx = int_arg(label, "--label")
    if not 0 <= idx < model.num_classes:
        raise ConfigError(f"--label {label}: classes are 0..{model.num_classes - 1}")
    return idx


def sample(args) -> int:
    if args.n < 1:
        raise ConfigError("-n must be at least 1")
    if is_sequence_run(args.run):
        return molecules.sample(args)
    if args.grid and args.label is not None:
        raise ConfigError("--grid shows every class: give no --label with it")
    doc = folder.read_run(args.run)
    model = folder.load(args.run)
    label = None if args.label is None else _label_index(args.label, model, doc.get("data", {}).get("class_names"))
    if args.grid and not model.conditional:
        raise ConfigError("--grid needs a conditional run (train with --model cvae)")
    x, nrow = sample_examples(model, args.n, label, args.grid, args.seed)
    out = save_array_or_grid(x, out_path(args, SAMPLES), nrow=nrow, image=len(model.data_shape) == 3)
    print(f"wrote {out}")
    return 0


def reconstruct(args) -> int:
    if is_sequence_run(args.run):
        molecules.not_for_sequences("vaekit reconstruct")
    model, cfg, data = run_data(args.run)
    x, y = run_inputs(model, cfg, data, getattr(args, "data", None))
    x, y = x[: args.n], None if y is None else y[: args.n]
    out = out_path(args, RECONSTRUCTIONS)
    if out.suffix == ".npy":
        save_array_or_grid(reconstruct_inputs(model, x, y), out)
    elif out.suffix == ".png":
        save_reconstructions(model, x, y, out)
    else:
        raise ConfigError(f"--out {out}: use a .png or .npy file")
    print(f"wrote {out}")
    return 0


def _pair(text, seed: int, count: int) -> tuple[int, int]:
    if text:
        parts = text.split(",")
        if len(parts) != 2:
            raise ConfigError("--pair takes two indices, e.g. 3,17")
        a, b = (int_arg(p, "--pair") for p in parts)
    else:
        a, b = torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:2].tolist()
    if not (0 <= a < count and 0 <= b < count):
        raise ConfigError(f"--pair indices must lie in 0..{count - 1}")
    return a, b


def interpolate(args) -> int:
    if is_sequence_run(args.run):
        return molecules.interpolate(args)
    model, cfg, data = run_data(args.run)
    x, y = run_inputs(model, cfg, data)
    a, b = _pair(",".join(args.pair) if args.pair else None, args.seed, x.shape[0])
    methods = ["linear", "spherical"] if args.method == "both" else [args.method]
    out = out_path(args, INTERPOLATION)
    save_interpolation(model, x[a : a + 1], x[b : b + 1], out, args.steps, methods, None if y is None else y[a : a + 1])
    print(f"wrote {out} ({', '.join(methods)}; examples {a} -> {b})")
    return 0


def _dims(text, diagnostics: dict, latent_dim: int) -> tuple[list[int], str]:
    """The dimensions to traverse, and a phrase saying how they were chosen."""
    if text and text.strip() == "all":
        return list(range(latent_dim)), "every latent dimension"
    if text:
        return [int_arg(d, "--dims") for d in text.split(",")], "the dimensions asked for"
    dims = dims_by_kl(diagnostics, ACTIVE_THRESHOLD, kl_threshold=TRAVERSE_KL)
    pairs = zip(diagnostics["activity"], diagnostics["kl_per_dim"])
    if not any(a > ACTIVE_THRESHOLD and k > TRAVERSE_KL for a, k in pairs):
        return dims, "no latent dimension is active: all of them, the largest KL first"
    return dims, (f"the {len(dims)} active latent dimensions (Cov_x E_q[z_d] > {ACTIVE_THRESHOLD:g} and "
                  f"KL > {TRAVERSE_KL:g} nats), "
                  "the largest KL first; --dims all shows every one")


def traverse(args) -> int:
    if is_sequence_run(args.run):
        molecules.not_for_sequences("vaekit traverse")
    model, cfg, data = run_data(args.run)
    if data.kind != "image":
        raise ConfigError(f"{args.run} was trained on a table; traverse draws images (for a table's latents "
                          "use 'vaekit encode', and 'vaekit eval' for the KL per dimension)")
    xs, ys = run_inputs(model, cfg, data)
    diagnostics = latent_diagnostics(model, xs[:2000], None if ys is None else ys[:2000], seed=cfg.training.seed)
    dims, chosen = _dims(args.dims, diagnostics, model.latent_dim)
    x = y = None
    if args.index is not None:
        if not 0 <= args.index < xs.shape[0]:
            raise ConfigError(f"--index must lie in 0..{xs.shape[0] - 1}")
        x, y = xs[args.index : args.index + 1], None if ys is None else ys[args.index : args.index + 1]
    elif model.conditional:
        y = torch.zeros(1, dtype=torch.long)
    out = out_path(args, TRAVERSE)
    save_traverse(model, dims, out, x, y, args.steps, args.span, diagnostics["kl_per_dim"])
    print(f"wrote {out} (rows: {chosen}; KL in nats per test example)")
    return 0
