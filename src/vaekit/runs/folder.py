"""Run folders: ``config.json`` + ``model.safetensors`` + ``metrics.jsonl`` + ``resume.pt``.

One format for every model kind. ``config.json`` holds ``"class"`` (the model's name in
:mod:`vaekit.core.registry`), ``"spec"`` (what its ``from_spec`` rebuilds it from), ``"config"``
(the settings it trained under, which the spec may refer to) and ``"environment"``; a job may add sections of its own (a
dataset description, an application's state), which this module passes through unread.

Nothing here unpickles: weights are safetensors, the config is JSON, and the resume file (model
and optimiser tensors, counters and RNG state) is read with ``torch.load(weights_only=True)``.
Every file is written atomically (temporary file, fsync, rename), so a crash at any moment
leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from vaekit import __version__  # the package face is lazy (PEP 562): this imports no other module
from vaekit.config import Config
from vaekit.core import registry
from vaekit.errors import ConfigError, RunError
from vaekit.training.runtime import dtype_name, is_precision_record

CONFIG, WEIGHTS, METRICS, RESUME = "config.json", "model.safetensors", "metrics.jsonl", "resume.pt"


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def environment(device: str | torch.device | None = None, autocast: Optional[torch.dtype] = None,
                matmul: str = "highest") -> dict[str, str]:
    """Versions and hardware of a run; ``autocast``: the dtype its networks trained under (None: float32);
    ``matmul``: torch's float32 matmul precision it trained under (highest: float32)."""
    return {
        "vaekit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": str(device) if device is not None else "cpu",
        "autocast": dtype_name(autocast),
        "matmul_precision": matmul,
    }


def save_config(run_dir: str | Path, config: Config, model, data_info: Optional[dict[str, Any]] = None, device=None,
                autocast: Optional[torch.dtype] = None, matmul: Optional[str] = None, **sections: Any) -> None:
    """Write ``config.json``: the model's class and spec, ``config``, ``data_info`` (when given),
    the environment (``matmul``: the matmul precision the steps ran under; by default the config's
    ``training.matmul_precision``), and any further JSON-able ``sections`` (e.g. an application's state)."""
    doc = {
        "class": registry.kind_of(model),
        "spec": model.spec(),
        "config": config.to_dict(),
        **({"data": data_info} if data_info is not None else {}),
        "environment": environment(device, autocast, matmul or config.training.matmul_precision),
        **sections,
    }
    atomic_write(Path(run_dir) / CONFIG, json.dumps(doc, indent=2) + "\n")


def _state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # torch.compile wraps modules; save the plain parameter names.
    inner = getattr(model, "_orig_mod", model)
    inner = getattr(inner, "module", inner)  # DistributedDataParallel
    return {k: v.detach().cpu().contiguous() for k, v in inner.state_dict().items()}


def save_weights(run_dir: str | Path, model: torch.nn.Module) -> None:
    atomic_write(Path(run_dir) / WEIGHTS, st_save(_state_dict(model)))


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a run folder, or RunError saying why it is not a run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{str(run_dir)!r} is not a folder; pass a run folder made by 'vaekit train'")
    path = run_dir / CONFIG
    if not path.is_file():
        raise RunError(f"{str(run_dir)!r} is not a vaekit run: it has no {CONFIG}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{path} is unreadable or corrupt ({type(exc).__name__}); the run cannot be used") from None
    if not isinstance(doc, dict) or not {"config", "spec"} <= doc.keys():
        raise RunError(f"{path} is not a vaekit run config (missing 'config' or 'spec')")
    doc.setdefault("class", registry.DEFAULT_KIND)  # folders written before config.json named a class
    return doc


def run_config(doc: dict[str, Any]) -> Config:
    try:
        return Config.from_dict(doc["config"])
    except ConfigError as exc:
        raise RunError(f"the run's config.json is invalid: {exc}") from None


def build_model(doc: dict[str, Any]) -> torch.nn.Module:
    """An untrained model of the class a run's config.json (read by :func:`read_run`) names, from
    its spec and the run's config (see :meth:`vaekit.core.models.BaseVAE.from_spec`)."""
    kind = doc.get("class", registry.DEFAULT_KIND)
    cls = registry.model_class(kind)
    config = run_config(doc)
    try:
        return cls.from_spec(doc["spec"], config)
    # RuntimeError: torch refusing a layer of the spec's sizes (negative, or too large to allocate)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, ConfigError) as exc:
        first = (str(exc).splitlines() or [""])[0][:160]
        raise RunError(f"the run's config.json cannot rebuild a {kind}: {type(exc).__name__} {first}") from None


def load_weights_into(model: torch.nn.Module, path: Path) -> None:
    """Load safetensors weights, refusing missing, extra or wrongly shaped tensors."""
    if not path.is_file():
        raise RunError(f"{path.parent} has no {path.name}; the run never finished an epoch or the file was removed")
    try:
        state = st_load(path.read_bytes())
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise RunError(f"{path} is not a valid safetensors file ({str(exc).splitlines()[0][:120]}); it is corrupt or was replaced") from None
    expected = model.state_dict()
    missing = sorted(expected.keys() - state.keys())
    extra = sorted(state.keys() - expected.keys())
    if missing or extra:
        raise RunError(f"{path} does not match the run's config: missing {missing[:3]}, unexpected {extra[:3]}")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape or tensor.dtype != expected[key].dtype:
            raise RunError(
                f"{path}: tensor {key!r} has shape {tuple(tensor.shape)} {tensor.dtype}, "
                f"the config needs {tuple(expected[key].shape)} {expected[key].dtype}"
            )
    model.load_state_dict(state)


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a trained model from its run folder alone; returned in eval mode (on the CPU by default)."""
    run_dir = Path(run_dir)
    doc = read_run(run_dir)
    model = build_model(doc)
    load_weights_into(model, run_dir / WEIGHTS)
    return model.to(device).eval()


def save_resume(run_dir: str | Path, state: dict[str, Any]) -> None:
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(Path(run_dir) / RESUME, buf.getvalue())


def load_resume(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / RESUME
    if not path.is_file():
        raise RunError(f"{run_dir} has no {RESUME}; it cannot be resumed (was it trained by vaekit?)")
    try:
        # weights_only=True: tensors, numbers, strings and containers only; never executes code.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RunError(f"{path} is corrupt or not a vaekit resume file ({type(exc).__name__}); nothing was loaded") from None


def append_metrics(run_dir: str | Path, record: dict[str, Any]) -> None:
    """Add one line to ``metrics.jsonl``, atomically: the file is rewritten whole (it holds one
    short line per epoch), so a crash leaves the old lines or the new ones, never a torn line."""
    path = Path(run_dir) / METRICS
    old = path.read_bytes() if path.is_file() else b""
    old = old[: old.rfind(b"\n") + 1]  # a torn last line (from an older writer) is dropped
    atomic_write(path, old + (json.dumps(record) + "\n").encode("utf-8"))


def check_resume_state(state: Any, model: torch.nn.Module, run_dir: str | Path) -> None:
    """RunError unless ``state`` is a resume checkpoint that fits ``model`` (tampered files are refused)."""
    where = Path(run_dir) / RESUME
    keys = {"model", "optimizer", "rng", "epoch", "step", "best_val", "bad_epochs"}
    if not isinstance(state, dict) or not keys <= state.keys():
        missing = sorted(keys - state.keys()) if isinstance(state, dict) else sorted(keys)
        raise RunError(f"{where} is not a vaekit resume file (missing {', '.join(missing)}); nothing was loaded")
    try:
        probe = copy.deepcopy(model)
        probe.load_state_dict(state["model"])
        torch.optim.Adam(probe.parameters()).load_state_dict(state["optimizer"])
        torch.Generator(device="cpu").set_state(state["rng"])
        counters = [int(state["epoch"]), int(state["step"]), float(state["best_val"]), int(state["bad_epochs"])]
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise RunError(f"{where} does not fit the run's model ({first}); it is corrupt or was replaced") from None
    if counters[0] < 0 or counters[1] < 0:
        raise RunError(f"{where} holds negative counters; it is corrupt or was replaced")
    kept = state.get("precision")  # absent in files written before vaekit kept it
    if kept is not None and not is_precision_record(kept):
        raise RunError(f"{where} holds an unknown precision record; it is corrupt or was replaced")


def remove_temporary_files(run_dir: str | Path) -> None:
    """Delete the temporary files of interrupted atomic writes (``.NAME.*.tmp``)."""
    for tmp in Path(run_dir).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def discard_unstarted(run_dir: str | Path, remove_folder: bool) -> None:
    """Remove what a run that never finished an epoch wrote (and its folder, when it made it)."""
    run_dir = Path(run_dir)
    for name in (CONFIG, METRICS, WEIGHTS, RESUME):
        (run_dir / name).unlink(missing_ok=True)
    remove_temporary_files(run_dir)
    if remove_folder:
        try:
            run_dir.rmdir()  # only when empty: never delete files this run did not write
        except OSError:
            pass


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line torn by a crash: everything after it is untrusted
    return records


def write_metrics(run_dir: str | Path, records: list[dict[str, Any]]) -> None:
    atomic_write(Path(run_dir) / METRICS, "".join(json.dumps(r) + "\n" for r in records))
