"""The run behind the explorer, loaded once: its model, the test examples it shows, their posterior
means and 2-D map, and the decoding that each request asks for.

Every method that runs the model is meant to be called from one thread at a time (the server
gives them a single worker thread): a torch module is not safe to call concurrently while
another thread changes torch's settings, and one decode of the default digits model takes well
under a millisecond, so requests queue briefly rather than contend.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from vaekit.apps.explorer.render import decoded, image_data_uri, table_row
from vaekit.measure.diagnostics import (
    ACTIVE_THRESHOLD,
    dims_by_kl,
    latent_diagnostics,
    pca_basis,
)
from vaekit.measure.evaluation import posterior_means
from vaekit.measure.latent import lerp, slerp
from vaekit.errors import RunError
from vaekit.runs.evaluate import run_data
from vaekit.runs.folder import read_run
from vaekit.training.loop import eval_inputs

# The map shows, and the diagnostics are measured on, at most this many test examples: enough to
# fill the scatter and estimate each dimension's KL well, few enough to load in a second.
MAP_EXAMPLES = 2000
PATHS = {"linear": lerp, "spherical": slerp}


class Explorer:
    """A run folder read once (``vaekit.run_data``), with what the explorer's routes answer."""

    def __init__(self, run_dir: str | Path, examples: int = MAP_EXAMPLES):
        self.run_dir = Path(run_dir)
        if read_run(self.run_dir).get("class") == "SequenceVAE":
            raise RunError(f"{run_dir} is a sequence run; vaekit serve explores image and table runs. "
                           "Move through a sequence run's latent space with vaekit interpolate or vaekit sample")
        self.model, self.config, self.data = run_data(run_dir)
        n = min(examples, len(self.data.test))
        self.x = eval_inputs(self.data, "test", self.config)[:n]
        labels = self.data.test_labels
        self.labels = None if labels is None else labels[:n].long()
        y = self.labels if self.model.conditional else None
        batch = self.config.training.eval_batch_size
        with torch.no_grad():
            self.means = posterior_means(self.model, self.x, y, batch_size=batch)
            self.diagnostics = latent_diagnostics(self.model, self.x, y, batch_size=batch)
        self.centre, self.basis, self.explained = pca_basis(self.means)

    @property
    def count(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.model.num_classes) if self.model.conditional else 0

    def info(self) -> dict[str, Any]:
        """What the page needs to lay itself out: sizes, active dimensions with their KL, classes."""
        kl = self.diagnostics["kl_per_dim"]
        return {
            "run": self.run_dir.name,
            "data": self.data.name,
            "kind": self.data.kind,
            "data_shape": list(self.model.data_shape),
            "latent_dim": int(self.model.latent_dim),
            "active": [{"dim": d, "kl": kl[d]} for d in dims_by_kl(self.diagnostics)],
            "active_units": int(self.diagnostics["active_units"]),
            "active_threshold": ACTIVE_THRESHOLD,  # Burda et al.'s test: Cov_x(E_q[z_d]) above it
            "kl_per_dim": kl,
            "conditional": bool(self.model.conditional),
            "num_classes": self.num_classes,
            "class_names": self._class_names(),
            "examples": self.count,
        }

    def _class_names(self) -> list[str] | None:
        if self.data.class_names:
            return [str(c) for c in self.data.class_names]
        if self.data.num_classes:
            return [str(c) for c in range(self.data.num_classes)]
        return None

    def map(self) -> dict[str, Any]:
        """The 2-D map of the test posterior means and the affine map back: z = centre + p @ basis."""
        points = ((self.means.double() - self.centre) @ self.basis.T).float()
        return {
            "points": [[round(float(v), 5) for v in row] for row in points],
            "labels": None if self.labels is None else self.labels.tolist(),
            "centre": self.centre.tolist(),
            "basis": self.basis.tolist(),
            "explained": self.explained,
            "pca": bool(self.model.latent_dim > 2),
        }

    @torch.no_grad()
    def decode(self, z: list[float], y: int | None = None) -> dict[str, Any]:
        """The mean of p(x | z, y) for one latent vector, ready for the page."""
        start = time.perf_counter()
        latent = torch.tensor([z], dtype=torch.float32)
        condition = None if y is None else torch.tensor([y])
        mean = self.model.decode(latent, condition).mean[0]
        out = decoded(mean, self.data.kind, self.data.preprocessing)
        return {**out, "z": [float(v) for v in latent[0]], "y": y, "ms": (time.perf_counter() - start) * 1e3}

    def path(self, a: int, b: int, t: float, method: str, y: int | None = None) -> dict[str, Any]:
        """The decoded point at fraction t of the way from example a's posterior mean to b's."""
        za, zb = self.means[a], self.means[b]
        z = PATHS[method](za[None], zb[None], torch.tensor([[t]]))[0]
        if y is None and self.model.conditional:
            y = int(self.labels[a])  # a conditional model decodes with a's class unless the page picked one
        return {**self.decode(z.tolist(), y), "a": a, "b": b, "t": t, "method": method}

    def example(self, i: int) -> dict[str, Any]:
        """Test example i as the page shows it, with its label and posterior mean."""
        x = self.x[i]
        shown = {"image": image_data_uri(x)} if self.data.kind == "image" else {"table": table_row(x, self.data.preprocessing)}
        label = None if self.labels is None else int(self.labels[i])
        return {**shown, "index": i, "label": label, "mean": self.means[i].tolist()}
