"""What ranks other than 0 do for ``vaekit train`` under ``torchrun``: the same training, no files.

Rank 0 runs :func:`vaekit.runs.jobs.train_run` / :func:`~vaekit.runs.jobs.resume_run` (run folder,
checkpoints, pictures); the others build the same job with the same code (same data, resolved
config, seed and model, or the same resume checkpoint) and take part in every collective step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from vaekit.config import Config
from vaekit.runs.jobs import new_job, resumed_job
from vaekit.training.loop import train


def follow_run(config: Optional[Config] = None, resume: Optional[str | Path] = None,
               epochs: Optional[int] = None) -> None:
    """Train alongside rank 0 on ``config`` (a new run) or from the run folder ``resume``, silently."""
    job = resumed_job(resume, epochs)[0] if resume is not None else new_job(config)
    job.cfg.training.progress = job.cfg.training.verbose = False
    train(job.model, job.data, job.cfg, resume=job.state, history=job.history)
