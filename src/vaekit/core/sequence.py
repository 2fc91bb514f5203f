"""A VAE over sequences of tokens: a GRU encoder, an autoregressive GRU decoder conditioned on z.

The model of Bowman et al. ("Generating sentences from a continuous space", CoNLL 2016) and of
the SMILES VAE of Gomez-Bombarelli et al. (ACS Cent. Sci. 2018) as MOSES trains it: tokens are
embedded, a (bidirectional) GRU reads them into q(z|x) = N(mean, diag(exp(logvar))), and a GRU
decoder whose initial state is a function of z, and which sees z beside every input token,
predicts each token from the ones before it (teacher forcing).

A sequence is a row of integer ids ``(max_len + 2,)``: ``bos``, the tokens, ``eos``, then
``pad``. The core knows nothing about SMILES: the vocabulary size, the maximum length and the
special ids are numbers here (the molecules application owns the tokenizer).

It fits the contracts of every model kind (:class:`~vaekit.core.models.BaseVAE`): ``encode``
returns a :class:`DiagonalGaussian`; ``decode(z)`` returns a :class:`SequenceLikelihood` whose
``log_prob(x)`` runs the teacher-forced decoder on ``x`` (pad positions masked) and whose
``sample()`` / ``mean`` decode autoregressively (sampled / greedy, all rows in one batch), so the
ELBO, IWAE, the training loop and the diagnostics run unchanged.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.core.distributions import DiagonalGaussian, categorical_sample
from vaekit.core.models import BaseVAE, VAEOutput
from vaekit.errors import ConfigError, DataError

__all__ = ["SequenceVAE", "SequenceLikelihood"]

SPEC_KEYS = ("vocab_size", "max_len", "latent_dim", "embed_dim", "hidden", "layers", "bidirectional",
             "word_dropout", "pad_id", "bos_id", "eos_id", "unk_id")


class SequenceLikelihood:
    """p(x|z) = prod_t p(x_t | x_<t, z) for a batch of codes z (any leading sample dims).

    The decoder runs when asked: ``log_prob(x)`` teacher-forced on ``x``; ``sample()`` and
    ``mean`` autoregressively. ``generator`` (set by the model's forward pass) draws the word
    dropout mask while training.
    """

    def __init__(self, model: "SequenceVAE", z: torch.Tensor, generator: Optional[torch.Generator] = None):
        self.model, self.z, self.generator = model, z, generator

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """sum_t log p(x_t | x_<t, z) over the tokens after ``bos`` up to and including ``eos``
        (pad targets masked), one value per sequence: shape ``z.shape[:-1]``, nats."""
        m = self.model
        lead = self.z.shape[:-1]
        m.check_ids(x)
        # the batch's longest row: no work on the pads after it (an empty batch keeps bos and one target)
        used = int((x != m.pad_id).sum(dim=1).max()) if x.shape[0] else 2
        x = x[:, : max(used, 2)]
        if len(lead) > 1:  # k draws per sequence: the sequences repeated k times
            x = x.expand(*lead[:-1], *x.shape).reshape(-1, x.shape[-1])
        inputs, targets = x[:, :-1], x[:, 1:]
        if m.training and m.word_dropout > 0:
            inputs = m.drop_words(inputs, self.generator)
        logits = m.teacher_forced(self.z.reshape(-1, m.latent_dim), inputs)
        # -cross_entropy is log softmax(logits) at the target; ignore_index masks the pads
        nll = F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=m.pad_id, reduction="none")
        return -nll.sum(dim=1).reshape(lead)

    def sample(self, generator: Optional[torch.Generator] = None, temperature: float = 1.0,
               constraint=None) -> torch.Tensor:
        """Token ids ``(*lead, max_len + 2)``, each token drawn from p(x_t | x_<t, z) (renormalised
        over the tokens ``constraint`` allows, when one is given)."""
        return self.model.generate(self.z, generator=generator, greedy=False, temperature=temperature,
                                   constraint=constraint)

    @property
    def mean(self) -> torch.Tensor:
        """Greedy decoding (the most probable token at each step), token ids ``(*lead, max_len + 2)``;
        the stand-in for a mean, which a sequence of categories does not have."""
        return self.model.generate(self.z, greedy=True)


class SequenceVAE(BaseVAE):
    """A GRU sequence VAE over ``vocab_size`` tokens and rows of ``max_len + 2`` ids.

    ``word_dropout``: while training, each decoder input token (not ``bos``) is replaced by
    ``unk`` with this probability (Bowman et al. 2016, section 3.3), so the decoder must lean on
    z; 0 turns it off. Evaluation and decoding never drop words.
    """

    def __init__(self, vocab_size: int, max_len: int, latent_dim: int = 64, embed_dim: int = 64, hidden: int = 256,
                 layers: int = 1, bidirectional: bool = True, word_dropout: float = 0.0,
                 pad_id: int = 0, bos_id: int = 1, eos_id: int = 2, unk_id: int = 3):
        super().__init__()
        if vocab_size < 4 or max_len < 1 or latent_dim < 1 or hidden < 1 or layers < 1 or embed_dim < 1:
            raise ValueError("vocab_size >= 4, and max_len, latent_dim, hidden, layers, embed_dim >= 1")
        if not 0 <= word_dropout < 1:
            raise ValueError(f"word_dropout must be in [0, 1), not {word_dropout}")
        self.vocab_size, self.max_len, self.latent_dim = int(vocab_size), int(max_len), int(latent_dim)
        self.embed_dim, self.hidden, self.layers = int(embed_dim), int(hidden), int(layers)
        self.bidirectional, self.word_dropout = bool(bidirectional), float(word_dropout)
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = int(pad_id), int(bos_id), int(eos_id), int(unk_id)
        self.data_shape = (self.max_len + 2,)
        directions = 2 if self.bidirectional else 1
        self.embed = nn.Embedding(self.vocab_size, self.embed_dim, padding_idx=self.pad_id)
        self.encoder = nn.GRU(self.embed_dim, self.hidden, self.layers, batch_first=True, bidirectional=self.bidirectional)
        self.to_posterior = nn.Linear(directions * self.hidden, 2 * self.latent_dim)
        self.to_state = nn.Linear(self.latent_dim, self.layers * self.hidden)
        self.decoder = nn.GRU(self.embed_dim + self.latent_dim, self.hidden, self.layers, batch_first=True)
        self.to_logits = nn.Linear(self.hidden, self.vocab_size)

    def check_ids(self, x: torch.Tensor) -> None:
        """DataError unless ``x`` is rows of ``max_len + 2`` integer ids below ``vocab_size``."""
        self.check_shape(x)
        if x.dtype.is_floating_point or x.dtype == torch.bool:
            raise DataError(f"a sequence model takes integer token ids, not {x.dtype}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.vocab_size):
            raise DataError(f"token ids must lie in 0..{self.vocab_size - 1}")

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DiagonalGaussian:
        """q(z|x) from the GRU's last states (both directions) over the tokens up to ``eos``."""
        self.check_ids(x)
        lengths = (x != self.pad_id).sum(dim=1).clamp(min=1)
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(x), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.encoder(packed)  # (layers * directions, batch, hidden)
        directions = 2 if self.bidirectional else 1
        last = h.view(self.layers, directions, x.shape[0], self.hidden)[-1]  # the top layer
        mean, logvar = self.to_posterior(last.permute(1, 0, 2).reshape(x.shape[0], -1)).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def decode(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> SequenceLikelihood:
        return SequenceLikelihood(self, z)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None) -> VAEOutput:
        """As :meth:`BaseVAE.forward`; the run's generator also draws the word dropout mask."""
        posterior = self.encode(x, y)
        z = posterior.rsample(generator=generator)
        return VAEOutput(posterior, z, SequenceLikelihood(self, z, generator))

    def _initial_state(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's initial hidden state from z: (layers, batch, hidden)."""
        h = torch.tanh(self.to_state(z))
        return h.view(z.shape[0], self.layers, self.hidden).permute(1, 0, 2).contiguous()

    def teacher_forced(self, z: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Logits (batch, T, vocab_size) of each next token given the input tokens (batch, T) and z (batch, latent_dim)."""
        emb = self.embed(inputs)
        feed = torch.cat([emb, z[:, None, :].expand(-1, inputs.shape[1], -1).to(emb.dtype)], dim=-1)
        out, _ = self.decoder(feed, self._initial_state(z))
        return self.to_logits(out)

    def drop_words(self, inputs: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``inputs`` with each real token after ``bos`` replaced by ``unk`` with probability ``word_dropout``."""
        u = torch.rand(inputs.shape, generator=generator, device=inputs.device)
        drop = (u < self.word_dropout) & (inputs != self.pad_id)
        drop[:, 0] = False  # bos stays: it tells the decoder that a sequence starts
        return inputs.masked_fill(drop, self.unk_id)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, generator: Optional[torch.Generator] = None, greedy: bool = False,
                 temperature: float = 1.0, constraint=None) -> torch.Tensor:
        """Autoregressive decoding of every code in ``z`` (*lead, latent_dim) at once: token ids
        (*lead, max_len + 2), ``bos`` first, ``pad`` after ``eos``. Stops when every row has
        emitted ``eos`` (or at ``max_len + 1`` tokens). ``greedy``: the most probable token
        each step; else a draw from softmax(logits / temperature).

        ``constraint`` (optional) restricts each step to the tokens it allows: an object with
        ``start(n, device)`` -> state, ``allowed(state, left)`` -> bool (n, vocab_size) with
        ``left`` positions left (this one included), and ``advance(state, tokens)``. The
        application that owns the tokens supplies it (a grammar); the others get -inf."""
        if not greedy and not temperature > 0:
            raise ConfigError(f"the sampling temperature must be above 0, not {temperature}")
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.latent_dim)
        n = flat.shape[0]
        out = torch.full((n, self.max_len + 2), self.pad_id, dtype=torch.long, device=flat.device)
        out[:, 0] = self.bos_id
        token, h = out[:, :1], self._initial_state(flat)
        done = torch.zeros(n, dtype=torch.bool, device=flat.device)
        state = constraint.start(n, flat.device) if constraint is not None else None
        for t in range(1, self.max_len + 2):
            feed = torch.cat([self.embed(token), flat[:, None, :].to(self.embed.weight.dtype)], dim=-1)
            step, h = self.decoder(feed, h)
            logits = self.to_logits(step[:, 0]).float()
            if not greedy:
                logits = logits / max(temperature, 1e-6)
            if constraint is not None:
                allowed = constraint.allowed(state, self.max_len + 2 - t).to(logits.device)
                logits = logits.masked_fill(~allowed, float("-inf"))
            token = categorical_sample(logits, generator, argmax=greedy).argmax(-1)
            token = token.masked_fill(done, self.pad_id)
            if constraint is not None:
                constraint.advance(state, token)
            out[:, t] = token
            done |= token == self.eos_id
            token = token[:, None]
            if bool(done.all()):
                break
        return out.reshape(*lead, self.max_len + 2)

    def spec(self) -> dict[str, Any]:
        """Everything that rebuilds the model: the sizes, the special ids and word dropout."""
        return {"vocab_size": self.vocab_size, "max_len": self.max_len, "latent_dim": self.latent_dim,
                "embed_dim": self.embed_dim, "hidden": self.hidden, "layers": self.layers,
                "bidirectional": self.bidirectional, "word_dropout": self.word_dropout, "pad_id": self.pad_id,
                "bos_id": self.bos_id, "eos_id": self.eos_id, "unk_id": self.unk_id}

    @classmethod
    def from_spec(cls, spec: dict[str, Any], config=None) -> "SequenceVAE":
        """The untrained model of ``spec`` (from :meth:`spec`); the spec holds every size, so no config is needed."""
        return cls(**{k: spec[k] for k in SPEC_KEYS})
