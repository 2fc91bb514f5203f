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

__all__ = ["DEFAULT_TEMPERATURE", "decode_codes", "encode_smiles", "interpolate_smiles", "sample_smiles"]

BATCH = 2_000  # codes decoded at once: 2,000 x 256 hidden units is small; the step loop dominates
# tokens drawn from softmax(logits / T) unless told otherwise; 1 is the decoder's own distribution and
# MOSES's protocol (bench/results/choices.md: the Kekulé recipe alone, timed; the sampling temperature)
DEFAULT_TEMPERATURE = 1.0


@torch.no_grad()
def sample_smiles(model: SequenceVAE, vocab: Vocabulary, n: int, seed: int = 0, temperature: Optional[float] = None,
                  batch_size: int = BATCH, progress=None, grammar: bool = False) -> list[str]:
    """``n`` SMILES decoded from z ~ N(0, I), each token drawn from p(x_t | x_<t, z) / temperature
    (1: the model's own distribution; None: ``DEFAULT_TEMPERATURE``). One generator, seeded with ``seed``, draws everything.
    ``grammar`` (SMILES and Kekulé vocabularies): each token drawn among those that keep the
    string's syntax and every atom's valence (:mod:`~vaekit.apps.molecules.valence`). Off by
    default: on MOSES it lifts validity but moves the molecules away from the data (FCD against
    held-out molecules 0.77 -> 1.03, bench/results/choices.md), so the default draws from the
    decoder's distribution as it is."""
    if n < 1:
        raise DataError(f"the number of molecules must be at least 1, not {n}")
    device = device_of(model)
    g = torch.Generator(device=device).manual_seed(seed)
    out, constraint = [], constraint_for(vocab, grammar)
    temperature = DEFAULT_TEMPERATURE if temperature is None else float(temperature)
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        z = model.sample_latent(size, generator=g)
        out += vocab.decode(model.decode(z).sample(generator=g, temperature=temperature, constraint=constraint).cpu())
        if progress is not None:
            progress(size)
    return out


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
