"""Data-parallel training: 2 CPU processes (gloo) follow the 1-process run with the doubled batch,
for the ELBO, KL warm-up, free bits (a non-linear function of the global batch mean) and IWAE; and
the `torchrun -m vaekit train` command line, stopped and resumed."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import small_config
from safetensors.torch import load_file, save_file

import vaekit
from vaekit.training import distributed
from vaekit.data import load_dataset
from vaekit.training.loop import train
from vaekit.training.setup import resolve_config


def _run(batch_size: int, epochs: int, **training):
    # float32: the equivalence holds up to float32 rounding; under bf16 autocast (precision=auto on
    # a CPU with native bf16) one batch of 64 and two shards of 32 round differently, by more than that
    training = {"precision": "fp32", **training}
    cfg = small_config(epochs=epochs, batch_size=batch_size, **training)
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    torch.manual_seed(0)
    model = vaekit.VAE(cfg.model, data.shape, data.num_classes)
    return model, train(model, data, cfg)


def _worker(rank: int, world: int, out: str, batch_size: int, epochs: int, training: dict):
    torch.set_num_threads(1)
    # the ranks meet through a file in the test's own folder: no port to pick, so none another process can take
    dist.init_process_group("gloo", init_method=f"file://{out}/rendezvous", rank=rank, world_size=world)
    try:
        assert distributed.rank_and_world() == (rank, world)
        model, history = _run(batch_size, epochs, **training)
        if rank == 0:
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{out}/weights.safetensors")
            with open(f"{out}/history.json", "w") as f:
                json.dump(history, f)
        # both ranks done before either tears down its connections; then the process ends as a
        # torchrun rank does, without the interpreter's teardown (distributed.leave)
        distributed.leave(0)
    finally:
        if dist.is_initialized():  # a rank that failed leaves without waiting for the other
            dist.destroy_process_group()


def _ddp(tmp_path, batch_size, epochs, **training):
    mp.spawn(_worker, args=(2, str(tmp_path), batch_size, epochs, training), nprocs=2, join=True)
    return load_file(str(tmp_path / "weights.safetensors")), json.loads((tmp_path / "history.json").read_text())


@pytest.mark.parametrize("training", [{}, {"warmup_steps": 15}, {"free_bits": 1.0}, {"objective": "iwae", "num_samples": 3}],
                         ids=["elbo", "warmup", "free-bits", "iwae"])
def test_two_ranks_match_one_process_with_doubled_batch(tmp_path, training):
    # digits has 1258 training examples: the last global batch of 64 splits unevenly (21 + 21 of 42).
    weights, history = _ddp(tmp_path, 32, 2, **training)
    model, reference = _run(64, 2, **training)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(weights[key], value, rtol=1e-4, atol=1e-5)
    assert len(history) == len(reference) == 2
    for got, want in zip(history, reference):
        assert got["step"] == want["step"]
        for key in ("train_loss", "train_recon", "train_kl", "val_loss"):
            assert got[key] == pytest.approx(want[key], rel=1e-4), key


def test_single_process_helpers_are_identities():
    assert distributed.rank_and_world() == (0, 1)
    assert distributed.is_main()
    t = torch.arange(3.0)
    assert distributed.all_reduce_sum(t) is t and torch.equal(t, torch.arange(3.0))
    distributed.setup("cpu")  # no WORLD_SIZE: nothing to join
    assert not dist.is_initialized()
    distributed.finish()  # nothing to leave
    assert not dist.is_initialized()


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    """torchrun with two ranks (``--standalone``: its rendezvous binds a free port itself, so no port is
    picked beforehand that another process could take); each rank's output is also kept in files (torchrun's --tee), and a
    failed launch's stderr ends with every rank's last lines, so a failure says where it happened."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    logs = Path(tempfile.mkdtemp(prefix="vaekit-torchrun-"))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
               f"--log-dir={logs}", "--tee=3", "-m", "vaekit", "train", "--no-progress", *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        tails = [f"--- {p.relative_to(logs)}:\n" + p.read_text(errors="replace")[-1500:] for p in sorted(logs.rglob("std*.log"))]
        done.stderr += "\n" + "\n".join(tails)
    shutil.rmtree(logs, ignore_errors=True)
    return done


def test_torchrun_cli_writes_one_run_folder_and_resumes_exactly(tmp_path):
    """`torchrun -m vaekit train` as the README shows it: rank 0 alone reports and writes the run folder,
    and a run stopped after 2 epochs and resumed to 3 ends with the weights of an uninterrupted one."""
    first = _torchrun("--epochs", "2", "--out", str(tmp_path / "part"))
    assert first.returncode == 0, first.stderr[-6000:]
    assert first.stdout.count("run folder:") == 1
    assert (first.stdout + first.stderr).count("PosteriorCollapseWarning") <= 1  # never one per rank
    resumed = _torchrun("--resume", str(tmp_path / "part"), "--epochs", "3")
    assert resumed.returncode == 0, resumed.stderr[-6000:]
    whole = _torchrun("--epochs", "3", "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr[-6000:]
    part, full = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("part", "whole"))
    for key in full:
        assert torch.equal(part[key], full[key]), key
    metrics = [(tmp_path / name / "metrics.jsonl").read_text().splitlines() for name in ("part", "whole")]
    assert len(metrics[0]) == len(metrics[1]) == 3
    assert [json.loads(line)["train_loss"] for line in metrics[0]] == [json.loads(line)["train_loss"] for line in metrics[1]]
