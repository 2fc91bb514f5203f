"""Molecules from a trained sequence VAE: sampling, encoding, decoding codes, interpolating.

Everything runs in batches (the decoder decodes every row of a batch at once) and every random
draw comes from a seeded ``torch.Generator``, so the same run and seed give the same molecules.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from vaekit.apps.molecules.tokenizer import Vocabulary
from vaekit.apps.molecules.valence import constraint_for
from vaekit.core.device import device_of
from vaekit.core.sequence import SequenceVAE
from vaekit.errors import DataError
from vaekit.measure.latent import lerp, slerp

__all__ = ["DEFAULT_REDRAW", "DEFAULT_TEMPERATURE", "decode_codes", "encode_smiles", "interpolate_smiles", "sample_smiles"]

BATCH = 2_000  # codes decoded at once: 2,000 x 256 hidden units is small; the step loop dominates
# tokens drawn from softmax(logits / T) unless told otherwise; 1 is the decoder's own distribution and
# MOSES's protocol (bench/results/choices.md: the Kekulé recipe alone, timed; the sampling temperature)
DEFAULT_TEMPERATURE = 1.0
# strings that break SMILES syntax or valence are drawn again (SMILES and Kekulé runs) unless told otherwise: on
# MOSES validity 0.954 -> 1.000 with FCD against held-out molecules unchanged (bench/results/choices.md)
DEFAULT_REDRAW = True
MAX_DRAWS = 10  # draws per molecule asked for, at most, before rejected strings fill the rest


@torch.no_grad()
def sample_smiles(model: SequenceVAE, vocab: Vocabulary, n: int, seed: int = 0, temperature: Optional[float] = None,
                  batch_size: int = BATCH, progress=None, grammar: bool = False, redraw: Optional[bool] = None,
                  counts: Optional[dict] = None) -> list[str]:
    """``n`` SMILES decoded from z ~ N(0, I), each token drawn from p(x_t | x_<t, z) / temperature
    (1: the model's own distribution; None: ``DEFAULT_TEMPERATURE``). One generator, seeded with ``seed``, draws everything.
    ``grammar`` (SMILES and Kekulé vocabularies): each token drawn among those that keep the
    string's syntax and every atom's valence (:mod:`~vaekit.apps.molecules.valence`). Off by
    default: on MOSES it lifts validity but moves the molecules away from the data (FCD against
    held-out molecules 0.77 -> 1.03, bench/results/choices.md), so the default leaves every token
    as the decoder draws it.

    ``redraw`` (SMILES and Kekulé vocabularies; None: ``DEFAULT_REDRAW``): every string is drawn from
    the decoder as it is, and one that breaks the same syntax and valence rules is set aside and
    drawn again, with a new z, until ``n`` strings pass: the model's distribution conditioned on
    well-formed strings, with no token renormalised. After ``MAX_DRAWS * n`` draws the rest are
    filled with rejected strings. ``counts`` (a dict), when given, gets ``drawn`` (every string
    decoded), ``rejected`` (those set aside) and ``unchecked`` (rejected ones returned to make up ``n``)."""
    if n < 1:
        raise DataError(f"the number of molecules must be at least 1, not {n}")
    device = device_of(model)
    g = torch.Generator(device=device).manual_seed(seed)
    constraint = constraint_for(vocab, grammar)
    check = constraint_for(vocab, DEFAULT_REDRAW if redraw is None else redraw) if constraint is None else None
    temperature = DEFAULT_TEMPERATURE if temperature is None else float(temperature)
    out, rejected, drawn, limit = [], [], 0, (MAX_DRAWS * n if check is not None else n)
    while len(out) < n and drawn < limit:
        size = min(batch_size, n - len(out), limit - drawn)
        z = model.sample_latent(size, generator=g)
        ids = model.decode(z).sample(generator=g, temperature=temperature, constraint=constraint).cpu()
        strings, drawn = vocab.decode(ids), drawn + size
        if check is not None:
            passed = check.accepts(ids).tolist()
            rejected += [s for s, ok in zip(strings, passed) if not ok]
            strings = [s for s, ok in zip(strings, passed) if ok]
        out += strings
        if progress is not None:
            progress(len(strings))
    unchecked = rejected[:n - len(out)]
    if counts is not None:
        counts.update(drawn=drawn, rejected=len(rejected), unchecked=len(unchecked))
    return out + unchecked


@torch.no_grad()
def encode_smiles(model: SequenceVAE, vocab: Vocabulary, smiles: Sequence[str],
                  batch_size: int = BATCH) -> tuple[torch.Tensor, list[int], dict[str, int]]:
    """(posterior means (kept, latent_dim), positions of the kept strings, counts of those left
    out by reason): strings with unseen tokens or longer than the vocabulary's maximum are skipped."""
    enc = vocab.encode(smiles)
    device = device_of(model)
    means = [model.encode(enc.ids[s:s + batch_size].to(device)).mean.cpu() for s in range(0, len(enc.kept), batch_size)]
    z = torch.cat(means) if means else torch.zeros(0, model.latent_dim)
    return z, enc.kept, enc.skipped


@torch.no_grad()
def decode_codes(model: SequenceVAE, vocab: Vocabulary, z: torch.Tensor, batch_size: int = BATCH,
                 grammar: bool = False) -> list[str]:
    """The greedy decoding (most probable token each step) of each code in ``z`` (N, latent_dim), as SMILES.
    ``grammar``: the most probable token among those that keep syntax and valence (the mask forbids
    only tokens that no valid string can follow, up to its valence table, so what it changes would
    have been invalid without it)."""
    device = device_of(model)
    out, constraint = [], constraint_for(vocab, grammar)
    for start in range(0, z.shape[0], batch_size):
        codes = z[start:start + batch_size].to(device)
        out += vocab.decode(model.generate(codes, greedy=True, constraint=constraint).cpu())
    return out


def encode_one(model: SequenceVAE, vocab: Vocabulary, smiles: str) -> torch.Tensor:
    """The posterior mean of one SMILES (1, latent_dim); a one-line DataError when it cannot be encoded."""
    vocab.encode([smiles], on_error="raise")
    return encode_smiles(model, vocab, [smiles])[0]


def interpolate_smiles(model: SequenceVAE, vocab: Vocabulary, a: str, b: str, steps: int = 8,
                       method: str = "linear") -> list[str]:
    """The molecules decoded (greedily) at ``steps`` evenly spaced points on the path between
    the posterior means of ``a`` and ``b``, both ends included; ``method``: linear or spherical."""
    if steps < 2:
        raise DataError("an interpolation needs at least 2 steps (both ends)")
    za, zb = encode_one(model, vocab, a), encode_one(model, vocab, b)
    t = torch.linspace(0, 1, steps)[:, None]
    path = slerp(za, zb, t) if method == "spherical" else lerp(za, zb, t)
    return decode_codes(model, vocab, path)


def reconstruction_rate(model: SequenceVAE, vocab: Vocabulary, smiles: Sequence[str],
                        canonical: Optional[callable] = None) -> float:
    """The fraction of ``smiles`` whose greedy decoding of the posterior mean gives the same string
    back (the same molecule, when ``canonical`` maps strings to canonical SMILES)."""
    z, kept, _ = encode_smiles(model, vocab, smiles)
    decoded = decode_codes(model, vocab, z)
    same = canonical or (lambda s: s)
    hits = sum(1 for i, d in zip(kept, decoded) if same(d) is not None and same(d) == same(smiles[i]))
    return hits / max(len(smiles), 1)
