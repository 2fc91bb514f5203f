"""Conditional VAE on digits: a classifier trained on real digits recognises the requested class,
and the run folder shows the samples one row per class."""

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

import vaekit
from vaekit.cli.main import main

from conftest import small_config


def test_cvae_samples_show_the_requested_digit(tmp_path, capsys):
    cfg = small_config(epochs=60)
    cfg.model.model = "cvae"
    cfg.model.hidden = (256,)
    cfg.model.latent_dim = 8
    run = vaekit.train_run(cfg, out=tmp_path / "cvae")
    model, _, data = vaekit.run_data(run)
    clf = LogisticRegression(max_iter=2000).fit(data.train.flatten(1).numpy(), data.train_labels.numpy())
    y = torch.arange(10).repeat_interleave(50)
    x = model.sample(len(y), y=y, generator=torch.Generator().manual_seed(0))
    accuracy = (clf.predict(x.flatten(1).numpy()) == y.numpy()).mean()
    assert accuracy >= 0.95

    # the run folder holds the class grid: 10 rows (one per digit) of 10 samples, rows named on the left
    from PIL import Image

    picture = Image.open(run / "samples_by_class.png")
    picture.load()
    width, height = picture.size
    assert height >= 10 * 48  # 8x8 digits are drawn at least 48 pixels high, one row per class
    assert width > height  # ten samples per row plus the row names
    pixels = np.asarray(picture.convert("L"), dtype=float)
    assert pixels.std() > 10  # not a blank picture

    # the command line: one class, and a grid with one row per class
    assert main(["sample", str(run), "--label", "3", "-n", "20", "--out", str(tmp_path / "three.npy")]) == 0
    threes = torch.from_numpy(np.load(tmp_path / "three.npy"))
    assert (clf.predict(threes.flatten(1).numpy()) == 3).mean() >= 0.9
    assert main(["sample", str(run), "--grid", "-n", "30", "--out", str(tmp_path / "grid.npy")]) == 0
    grid = np.load(tmp_path / "grid.npy")
    assert grid.shape == (30, 1, 8, 8)  # 10 rows of 3
    assert main(["sample", str(run), "--grid", "--label", "2"]) == 2
    assert main(["sample", str(run), "--grid", "-n", "20", "--out", str(tmp_path / "grid.png")]) == 0
    assert Image.open(tmp_path / "grid.png").size[1] > Image.open(tmp_path / "grid.png").size[0]  # 10 rows of 2
