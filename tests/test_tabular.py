"""Synthetic tables: column round trips, conditional sampling, save/load, bad tables, the CLI."""

import json

import numpy as np
import pytest
import torch

pd = pytest.importorskip("pandas")

import vaekit  # noqa: E402
from vaekit import DataError, RunError, TabularVAE  # noqa: E402
from vaekit.cli.main import main  # noqa: E402
from vaekit.apps.tabular.likelihood import MixedTabular  # noqa: E402
from vaekit.apps.tabular.model import TabularModel  # noqa: E402
from vaekit.apps.tabular.transform import TableTransformer  # noqa: E402
from vaekit.apps.tabular.types import read_metadata  # noqa: E402


def make_table(n=800, seed=0):
    """Every column type: bimodal float (2 decimals), skewed int with a point mass, category tied
    to a number, boolean, small-int categorical, and missing values in a float and a category."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    level = np.where(group == "b", rng.normal(10, 1, n), rng.normal(0, 1, n))  # depends on group
    gain = np.where(rng.random(n) < 0.8, 0, rng.lognormal(8, 1, n)).astype(np.int64)
    with_gaps = np.round(rng.normal(50, 5, n), 1)
    with_gaps[rng.random(n) < 0.2] = np.nan
    colour = rng.choice(["red", "blue"], size=n).astype(object)
    colour[rng.random(n) < 0.15] = np.nan
    return pd.DataFrame({
        "level": np.round(level, 2), "gain": gain, "group": group, "flag": rng.random(n) < 0.3,
        "rooms": rng.integers(1, 5, n), "with_gaps": with_gaps, "colour": colour,
    })


@pytest.fixture(scope="module")
def table():
    return make_table()


@pytest.fixture(scope="module")
def fitted(table):
    return TabularVAE(epochs=40, batch_size=100, hidden=(64, 64), latent_dim=8, verbose=False).fit(table)


def test_types_are_inferred(fitted):
    kinds = {c["name"]: c["kind"] for c in fitted.transformer_.columns_}
    assert kinds == {"level": "continuous", "gain": "continuous", "group": "categorical", "flag": "boolean",
                     "rooms": "categorical", "with_gaps": "continuous", "colour": "categorical"}


def test_round_trip_of_every_column_type(table, fitted):
    synth = fitted.sample(3000)
    assert list(synth.columns) == list(table.columns)
    assert synth.dtypes.to_dict() == table.dtypes.to_dict()
    for col in ("group", "flag", "rooms", "colour"):
        assert set(synth[col].dropna()) <= set(table[col].dropna())
    for col in ("with_gaps", "colour"):
        assert abs(synth[col].isna().mean() - table[col].isna().mean()) < 0.07
    for col in ("level", "gain", "group", "flag", "rooms"):
        assert not synth[col].isna().any()
    for col in ("level", "gain", "with_gaps"):
        assert synth[col].min() >= table[col].min() and synth[col].max() <= table[col].max()
    assert np.allclose(synth["level"], synth["level"].round(2))
    assert np.allclose(synth["with_gaps"].dropna(), synth["with_gaps"].dropna().round(1))
    # the point mass at 0 (80% of rows) is reproduced, not smeared
    assert abs((synth["gain"] == 0).mean() - 0.8) < 0.1
    # marginals are close: category frequencies within a few percent
    freq = synth["group"].value_counts(normalize=True)
    assert abs(freq["a"] - 0.5) < 0.1 and abs(freq["b"] - 0.3) < 0.1


def test_transform_inverse_is_exact_on_training_rows(table):
    tr = TableTransformer().fit(table)
    back = tr.inverse(tr.transform(table))
    pd.testing.assert_frame_equal(back, table, check_exact=False, atol=1e-6)


def test_conditional_sampling_meets_condition_and_shapes_other_columns(fitted):
    b = fitted.sample(500, conditions={"group": "b"})
    a = fitted.sample(500, conditions={"group": "a"})
    assert (b["group"] == "b").all() and (a["group"] == "a").all()
    # the condition goes through the model: `level` follows its group (about 10 vs about 0)
    assert b["level"].mean() > a["level"].mean() + 5
    both = fitted.sample(200, conditions={"group": "c", "flag": True})
    assert (both["group"] == "c").all() and both["flag"].all()


def test_save_load_gives_identical_samples(fitted, tmp_path):
    fitted.save(tmp_path / "model")
    assert {p.name for p in (tmp_path / "model").iterdir()} >= {"config.json", "model.safetensors"}
    again = TabularVAE.load(tmp_path / "model")
    pd.testing.assert_frame_equal(fitted.sample(300, seed=7), again.sample(300, seed=7))
    pd.testing.assert_frame_equal(fitted.sample(50, {"group": "b"}, seed=3), again.sample(50, {"group": "b"}, seed=3))
    assert not fitted.sample(300, seed=7).equals(fitted.sample(300, seed=8))
    # one run format: vaekit.load gives the network, in eval mode on the CPU, with the same weights
    net = vaekit.load(tmp_path / "model")
    assert isinstance(net, TabularModel) and not net.training and next(net.parameters()).device.type == "cpu"
    x = torch.from_numpy(fitted.transformer_.transform(fitted.sample(20, seed=1)))
    torch.testing.assert_close(net.encode(x).mean, fitted.model_.encode(x).mean, rtol=0, atol=0)
    doc = json.loads((tmp_path / "model" / "config.json").read_text())
    assert doc["class"] == "TabularModel" and set(doc["app"]) == {"params", "transformer", "num_rows"}
    assert again.loss_values.equals(fitted.loss_values)  # metrics.jsonl holds the losses


def test_a_vae_run_is_not_a_tabular_vae(tmp_path):
    from vaekit.runs import folder

    cfg = vaekit.Config(model=vaekit.ModelConfig(likelihood="bernoulli", hidden=(4,), latent_dim=2))
    folder.save_config(tmp_path / "vae", cfg, vaekit.VAE(cfg.model, (3,)), {})
    with pytest.raises(RunError, match="holds a VAE run, not a TabularVAE"):
        TabularVAE.load(tmp_path / "vae")
    with pytest.raises(RunError, match="no config.json"):
        TabularVAE.load(tmp_path)


def test_loss_values_per_epoch(fitted):
    losses = fitted.loss_values
    assert len(losses) == 40 and list(losses["epoch"]) == list(range(1, 41))
    assert losses["train_loss"].iloc[-1] < losses["train_loss"].iloc[0]


def test_model_follows_the_vae_interface(fitted, table):
    model = fitted.model_
    x = torch.from_numpy(fitted.transformer_.transform(table.head(16)))
    assert isinstance(model.encode(x), vaekit.DiagonalGaussian)
    p = model.decode(model.encode(x).mean)
    assert isinstance(p, MixedTabular) and p.log_prob(x).shape == (16,) and p.mean.shape == x.shape
    ll = vaekit.log_likelihood(model, x, num_samples=20)
    assert ll.shape == (16,) and torch.isfinite(ll).all()


def test_mixed_likelihood_matches_its_parts():
    # one continuous column with a missing flag, one 3-way categorical
    params = torch.tensor([[0.5, 0.0, -1.0, 2.0, 0.0, -2.0]])
    p = MixedTabular(params, 1, (0,), (3,), scale_floor=0.05)
    scale = 0.05 + torch.nn.functional.softplus(torch.tensor(0.0))
    gauss = torch.distributions.Normal(0.5, scale).log_prob(torch.tensor(1.0))
    cat = torch.log_softmax(torch.tensor([2.0, 0.0, -2.0]), 0)[1]
    observed = torch.tensor([[1.0, 0.0, 0.0, 1.0, 0.0]])
    assert torch.allclose(p.log_prob(observed), gauss + torch.log(torch.sigmoid(torch.tensor(1.0))) + cat, atol=1e-5)
    missing = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.0]])  # flag set: the value is left out
    assert torch.allclose(p.log_prob(missing), torch.log(torch.sigmoid(torch.tensor(-1.0))) + cat, atol=1e-5)
    draw = p.sample(torch.Generator().manual_seed(0))
    assert draw.shape == (1, 5) and draw[0, 2:].sum() == 1


def test_mixed_likelihood_of_many_blocks_is_the_sum_of_categorical_terms():
    # blocks of different widths (one of width 1), one left out (all zeros), leading sample dims
    torch.manual_seed(0)
    sizes = (3, 7, 1, 16, 2)
    params = torch.randn(4, 5, sum(sizes), requires_grad=True)
    x = torch.zeros(5, sum(sizes))
    start = 0
    for size in sizes:
        x[torch.arange(5), start + torch.randint(0, size, (5,))] = 1.0
        start += size
    x[2, :3] = 0.0
    expected, start = 0.0, 0
    for size in sizes:
        dist = torch.distributions.OneHotCategorical(logits=params[..., start : start + size], validate_args=False)
        block = x[..., start : start + size]
        expected = expected + torch.where(block.sum(-1) > 0, dist.log_prob(block.expand(4, 5, size)), 0.0)
        start += size
    got = MixedTabular(params, 0, (), sizes).log_prob(x)
    assert got.shape == (4, 5)
    torch.testing.assert_close(got, expected)
    g_got, = torch.autograd.grad(got.sum(), params)
    g_expected, = torch.autograd.grad(expected.sum(), params)
    torch.testing.assert_close(g_got, g_expected)


def test_bad_tables(table):
    quick = dict(epochs=2, batch_size=50, hidden=(16,), latent_dim=2, verbose=False)
    with pytest.raises(DataError, match="row"):
        TabularVAE(**quick).fit(table.head(1))
    with pytest.raises(DataError, match="entirely missing"):
        TabularVAE(**quick).fit(table.assign(empty=np.nan))
    constant = TabularVAE(**quick).fit(table.head(200).assign(same=7, label="x"))
    out = constant.sample(50)
    assert (out["same"] == 7).all() and (out["label"] == "x").all()
    with pytest.raises(DataError, match="never seen"):
        constant.sample(10, conditions={"group": "zzz"})
    with pytest.raises(DataError, match="not a column"):
        constant.sample(10, conditions={"nope": "a"})
    with pytest.raises(DataError, match="not supported"):
        constant.sample(10, conditions={"level": 1.0})
    with pytest.raises(vaekit.ConfigError, match="not fitted"):
        TabularVAE().sample(5)
    with pytest.raises(DataError, match="not a column|lacks"):
        TabularVAE(metadata={"columns": [{"name": "missing", "type": "continuous"}]}, **quick).fit(table)


def test_adult_metadata_file_works_as_is(data_dir):
    path = data_dir / "tabular" / "adult" / "adult.json"
    if not path.is_file():
        pytest.skip("Adult is not in $VAEKIT_DATA_DIR")
    kinds = read_metadata(path)
    assert kinds["age"] == "continuous" and kinds["education"] == "categorical" and len(kinds) == 15
    df = pd.read_csv(data_dir / "tabular" / "adult" / "adult.csv", nrows=400)
    model = TabularVAE(metadata=path, epochs=2, hidden=(32,), latent_dim=4, verbose=False).fit(df)
    rich = model.sample(100, conditions={"income": ">50K"})  # Adult's values carry a leading space
    assert (rich["income"] == " >50K").all() and rich["education-num"].dtype == df["education-num"].dtype


def test_cli_train_and_synth(tmp_path, capsys):
    csv = tmp_path / "table.csv"
    make_table(300).to_csv(csv, index=False)
    run = tmp_path / "run"
    assert main(["train", "--data", str(csv), "--model", "tabular", "--epochs", "2", "--hidden", "32",
                 "--out", str(run), "--no-progress"]) == 0
    assert json.loads((run / "config.json").read_text())["class"] == "TabularModel"
    import matplotlib.pyplot as plt

    for picture in ("curves.png", "columns.png"):  # real PNGs with something drawn on them
        image = plt.imread(run / picture)
        assert image.shape[0] > 100 and image.shape[1] > 100 and image[..., :3].std() > 0.05
    out = tmp_path / "synthetic.csv"
    assert main(["synth", str(run), "-n", "100", "--out", str(out), "--condition", "group=b"]) == 0
    synth = pd.read_csv(out)
    assert len(synth) == 100 and list(synth.columns) == list(make_table(5).columns) and (synth["group"] == "b").all()
    capsys.readouterr()
    assert main(["synth", str(run), "-n", "10", "--condition", "group=zzz"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vaekit: error:") and "never seen" in err and "\n" not in err
    assert main(["train", "--data", str(csv), "--metadata", "m.json"]) == 2
    assert main(["train", "--data", str(csv), "--target", "group"]) == 2  # --target is for --model tabular
    targeted = tmp_path / "targeted"
    assert main(["train", "--data", str(csv), "--model", "tabular", "--target", "group", "--epochs", "2",
                 "--hidden", "32", "--out", str(targeted), "--no-progress"]) == 0
    assert TabularVAE.load(targeted).target == "group"
    assert main(["synth", str(targeted), "-n", "50", "--out", str(tmp_path / "t.csv")]) == 0
    assert set(pd.read_csv(tmp_path / "t.csv")["group"]) <= set(make_table(300)["group"])
    codes = tmp_path / "codes.csv"
    table_with_codes(300).to_csv(codes, index=False)
    kinds = {}
    for flags, name in (([], "derived"), (["--model-every-column"], "every")):
        assert main(["train", "--data", str(codes), "--model", "tabular", "--epochs", "2", "--hidden", "16",
                     "--out", str(tmp_path / name), "--no-progress", *flags]) == 0
        kinds[name] = {c["name"]: c["kind"] for c in TabularVAE.load(tmp_path / name).transformer_.columns_}
    assert kinds["derived"]["code"] == "derived" and kinds["every"]["code"] == "categorical"  # 4 integer values
    assert main(["train", "--data", str(codes), "--model-every-column"]) == 2  # for --model tabular only


def make_dated(n=400, seed=0):
    rng = np.random.default_rng(seed)
    day = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 366, n), unit="D")
    when = pd.Series(day.strftime("%d/%m/%Y"), dtype=object)  # day first: 13/01/2020 cannot be month first
    when[rng.random(n) < 0.1] = np.nan
    stamp = pd.Series(day + pd.to_timedelta(rng.integers(0, 24, n), unit="h"))
    return pd.DataFrame({"when": when, "stamp": stamp, "x": np.round(rng.normal(size=n), 3),
                         "year_code": rng.choice(["2020", "2021"], n)})


def test_datetime_columns_are_inferred_and_round_trip_exactly():
    df = make_dated()
    tr = TableTransformer().fit(df)
    specs = {c["name"]: c for c in tr.columns_}
    assert {k: c["kind"] for k, c in specs.items()} == {"when": "datetime", "stamp": "datetime", "x": "continuous",
                                                        "year_code": "categorical"}
    assert specs["when"]["format"] == "%d/%m/%Y" and specs["when"]["unit_s"] == 86400
    assert specs["stamp"]["unit_s"] == 3600
    back = tr.inverse(tr.transform(df))
    assert back["when"].isna().equals(df["when"].isna())
    assert (back["when"].dropna() == df["when"].dropna()).all()
    assert (back["stamp"] == df["stamp"]).all() and back["stamp"].dtype == df["stamp"].dtype


def test_datetime_samples_keep_format_range_and_unit():
    df = make_dated()
    meta = {"columns": {"when": {"sdtype": "datetime", "datetime_format": "%d/%m/%Y"}, "stamp": {"sdtype": "datetime"},
                        "x": {"sdtype": "numerical"}, "year_code": {"sdtype": "categorical"}}}
    model = TabularVAE(metadata=meta, epochs=30, batch_size=100, hidden=(32,), latent_dim=4, verbose=False).fit(df)
    synth = model.sample(300)
    when = pd.to_datetime(synth["when"].dropna(), format="%d/%m/%Y")  # every value reads back in the format
    assert 0 < synth["when"].isna().mean() < 0.3
    lo, hi = pd.to_datetime(df["when"].dropna(), format="%d/%m/%Y").agg(["min", "max"])
    assert when.min() >= lo and when.max() <= hi
    assert synth["stamp"].dtype == df["stamp"].dtype and (synth["stamp"].dt.minute == 0).all()
    assert synth["stamp"].min() >= df["stamp"].min() and synth["stamp"].max() <= df["stamp"].max()
    with pytest.raises(DataError, match="not supported"):
        model.sample(5, conditions={"when": "01/02/2020"})
    with pytest.raises(DataError, match="does not read as a date"):
        TabularVAE(metadata={"columns": {"year_code": {"sdtype": "datetime", "datetime_format": "%d/%m/%Y"}}},
                   epochs=1, verbose=False).fit(df)
    with pytest.raises(DataError, match="strftime"):
        read_metadata({"columns": {"x": {"sdtype": "numerical", "datetime_format": "%Y"}}})


def test_latent_mixture_is_fitted_saved_and_sampled(table, tmp_path):
    model = TabularVAE(epochs=20, batch_size=100, hidden=(64, 64), latent_dim=4, latent_components=3,
                       verbose=False).fit(table)
    net = model.model_
    weights = torch.softmax(net.mix_logits, 0)
    assert torch.isclose(weights.sum(), torch.tensor(1.0)) and (weights > 0.01).all()
    # the mixture describes the codes of the training rows: draws from it have their mean and spread
    x = torch.from_numpy(model.transformer_.transform(table, rng=np.random.default_rng(0)))
    with torch.no_grad():
        codes = net.encode(x).rsample(generator=torch.Generator().manual_seed(0))
    draws = net.sample_latent(20_000, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(draws.mean(0), codes.mean(0), atol=0.1)
    assert torch.allclose(draws.std(0), codes.std(0), rtol=0.15)
    synth = model.sample(2000)
    assert abs((synth["group"] == "a").mean() - 0.5) < 0.1
    # p(component | category): a distribution per category, and conditions move the latent draws
    # to where the codes of rows with that category lie
    assert torch.allclose(torch.logsumexp(net.mix_cond, 1), torch.zeros(net.cond_dim), atol=1e-4)
    start = model.transformer_.cat_offset("group")[0] - (model.transformer_.width - net.cond_dim)
    for i, value in enumerate(["a", "b"]):
        c = torch.zeros(1, net.cond_dim)
        c[0, start + i] = 1
        rows = torch.from_numpy((table["group"] == value).to_numpy(copy=True))
        moved = net.sample_latent(20_000, c, generator=torch.Generator().manual_seed(2)).mean(0)
        assert (moved - codes[rows].mean(0)).norm() < 0.75 * (codes[rows].mean(0) - codes.mean(0)).norm()
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(TabularVAE.load(tmp_path / "m").sample(200, seed=4), model.sample(200, seed=4))


def test_target_is_modelled_last_from_the_rest_of_the_row(table, tmp_path):
    model = TabularVAE(epochs=60, batch_size=100, hidden=(64, 64), latent_dim=8, target="group",
                       verbose=False).fit(table)
    net, tr = model.model_, model.transformer_
    start, size = net.target_block
    assert (start, size) == (tr.cat_offset("group")[0], 3)
    x = torch.from_numpy(tr.transform(table.head(64)))
    z = net.encode(x).mean
    p = net.decode(z)
    # log p(x|z) = the other columns' MixedTabular terms + log p(group | rest of the row) from the head
    rest = x.clone()
    rest[:, start : start + size] = 0
    base = MixedTabular(net.decoder(torch.cat([z, torch.zeros(64, net.cond_dim)], -1)), net.n_cont,
                        net.missing_of, net.cat_sizes, net.scale_floor)
    head = torch.log_softmax(net.head(rest), -1)
    expected = base.log_prob(rest) + (head * x[:, start : start + size]).sum(-1)
    assert torch.allclose(p.log_prob(x), expected, atol=1e-4)
    # the head never sees the target's own value: other one-hots give the same p(group | rest)
    other = x.clone()
    other[:, start : start + size] = torch.eye(3)[torch.arange(64) % 3]
    assert torch.allclose(p.log_prob(other) - (head * other[:, start : start + size]).sum(-1), base.log_prob(rest), atol=1e-4)
    # samples: group follows level (b: level ~ 10; a and c: ~ 0), drawn after level
    synth = model.sample(2000)
    assert (synth.loc[synth["level"] > 5, "group"] == "b").mean() > 0.85  # 1 in the table
    assert (synth.loc[synth["level"] < 5, "group"] == "b").mean() < 0.08  # 0 in the table
    assert abs((synth["group"] == "a").mean() - 0.5) < 0.1
    ll = vaekit.log_likelihood(net, x[:8], num_samples=10)
    assert ll.shape == (8,) and torch.isfinite(ll).all()
    assert (model.sample(100, conditions={"group": "c"})["group"] == "c").all()
    model.save(tmp_path / "t")
    again = TabularVAE.load(tmp_path / "t")
    assert again.target == "group" and again.model_.target_block == net.target_block
    pd.testing.assert_frame_equal(again.sample(200, seed=5), model.sample(200, seed=5))
    with pytest.raises(vaekit.ConfigError, match="target"):
        TabularVAE(epochs=1, target="level", verbose=False).fit(table)


def score_table(n=1500, seed=0):
    """A label that depends on single values of a discrete number (score 3 or 7: "yes"), the way
    Adult's income depends on single capital-gain amounts; missing scores and a point mass at 0."""
    rng = np.random.default_rng(seed)
    score = rng.integers(0, 10, n).astype(float)
    label = np.where(np.isin(score, [3, 7]), "yes", "no")
    score[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"score": score, "noise": rng.normal(size=n), "label": label})


def test_level_edges_map_each_row_to_its_own_value():
    from vaekit.apps.tabular.head import level_edges

    table = score_table()
    data = table.assign(score=table["score"].where(table.index % 2 == 1, 0.0))  # 0 in half the rows: an atom
    tr = TableTransformer({"score": "continuous"}, point_mass=0.3).fit(data)
    rows = tr.transform(data, rng=np.random.default_rng(0))
    levels, edges = level_edges(tr, data, rows)
    assert [level[0] for level in levels] == [0]  # score; noise has 1500 values, more than the limit
    j, k, other, flag = levels[0]
    values = np.unique(data["score"].dropna()[lambda s: s != 0])
    assert k == len(values) - 1 and np.all(np.diff(edges) > 0)
    assert flag == 2 and rows[data["score"].isna().to_numpy(), flag].min() == 1.0  # the missing flag
    assert other == rows.shape[1] - 1  # the atom block's "other value" entry
    layout = {"n_cont": len(tr.continuous), "missing_of": list(tr.missing_of), "cat_sizes": list(tr.cat_sizes)}
    start, spec = tr.cat_offset("label")
    net = TabularModel(layout, 2, (8,), target_block=(start, 2), head_levels=levels)
    net.head_edges.copy_(torch.as_tensor(edges))
    onehot = net.head_features(torch.from_numpy(rows))[:, rows.shape[1]:].numpy()
    plain = ((data["score"] != 0) & data["score"].notna()).to_numpy()
    assert (onehot[plain].argmax(1) == np.searchsorted(values, data["score"][plain])).all()
    assert (onehot[~plain] == 0).all()  # atoms and missing values stand for no level


def test_target_head_sees_single_values_and_stops_early(tmp_path):
    table = score_table()
    model = TabularVAE(metadata={"columns": [{"name": "score", "type": "continuous"}]}, epochs=5, batch_size=100, hidden=(32,), latent_dim=4,
                       target="label", point_mass=None, verbose=False).fit(table)  # no atoms: score stays a number
    net, tr = model.model_, model.transformer_
    assert [level[0] for level in net.head_levels] == [0]
    # p(yes | score): high at 3 and 7 only, a function of single values that a smooth one misses
    grid = pd.DataFrame({"score": np.arange(10.0), "noise": 0.0, "label": "no"})
    x = torch.from_numpy(tr.transform(grid))
    start, size = net.target_block
    yes = tr.cat_offset("label")[1]["categories"].index("yes")
    x[:, start : start + size] = 0
    with torch.no_grad():
        p = torch.softmax(net.target_logits(x), -1)[:, yes].numpy()
    assert p[[3, 7]].min() > 0.8 and np.delete(p, [3, 7]).max() < 0.2
    # the head kept is that of the epoch with the best held-out log-loss, and it stopped early
    history = model.head_history_
    best = min(history, key=lambda r: r["val_loss"])
    assert len(history) < 200 and len(history) - best["epoch"] == 10
    # saved and loaded with its edges
    model.save(tmp_path / "m")
    again = TabularVAE.load(tmp_path / "m")
    assert torch.equal(again.model_.head_edges, net.head_edges) and again.model_.head_levels == net.head_levels
    pd.testing.assert_frame_equal(again.sample(100, seed=2), model.sample(100, seed=2))


def test_auto_settings_depend_on_the_target(table):
    quick = dict(epochs=1, batch_size=100, hidden=(16,), latent_dim=2, verbose=False)
    plain = TabularVAE(**quick).fit(table)
    targeted = TabularVAE(target="group", **quick).fit(table)
    assert plain.point_mass == targeted.point_mass == "auto"  # stored untouched
    assert (plain.transformer_.point_mass, plain.model_.latent_components) == (None, 10)
    assert (targeted.transformer_.point_mass, targeted.model_.latent_components) == (0.01, 20)
    assert targeted.transformer_.atom_columns  # gain's zeros (80% of rows) are an atom
    with pytest.raises(vaekit.ConfigError, match="auto"):
        TabularVAE(point_mass="many", **quick).fit(table)


def table_with_codes(n=600, seed=0):
    """'degree' has a numeric code (one to one) and a coarse band (many to one); 'degree' is
    missing in some rows, where the code is missing too. 'noise' is not a function of anything."""
    rng = np.random.default_rng(seed)
    degree = rng.choice(["none", "school", "college", "phd"], size=n, p=[0.2, 0.4, 0.3, 0.1]).astype(object)
    degree[rng.random(n) < 0.1] = np.nan
    code = pd.Series(degree).map({"none": 0, "school": 1, "college": 2, "phd": 3}).to_numpy()
    band = pd.Series(degree).map({"none": "low", "school": "low", "college": "high", "phd": "high"}).to_numpy(dtype=object)
    return pd.DataFrame({"degree": degree, "code": code, "band": band, "noise": rng.normal(0, 1, n),
                         "key": np.arange(n) % 300})


def test_columns_that_are_functions_of_a_category_are_read_off_it():
    from vaekit.apps.tabular.dependencies import find_derived

    df = table_with_codes()
    derived = find_derived(df, parents=["degree", "band"], children=list(df.columns))
    assert set(derived) == {"code", "band"} and derived["code"][0] == "degree" and derived["band"][0] == "degree"
    # 'key' has 300 values for 600 rows: every column would be a function of such a parent by chance
    assert find_derived(df, parents=["key"], children=["noise", "degree"]) == {}

    model = TabularVAE(metadata={"columns": [{"name": "key", "type": "categorical"}]}, epochs=30, batch_size=100,
                       hidden=(32,), latent_dim=4, verbose=False).fit(df)
    specs = {c["name"]: c for c in model.transformer_.columns_}
    assert specs["code"]["kind"] == specs["band"]["kind"] == "derived"
    assert specs["degree"]["kind"] == "categorical" and specs["noise"]["kind"] == "continuous"
    synth = model.sample(2000, seed=1)
    assert synth.dtypes.to_dict() == df.dtypes.to_dict()
    real_pairs = set(map(tuple, df[["degree", "code", "band"]].astype(str).to_numpy()))
    assert set(map(tuple, synth[["degree", "code", "band"]].astype(str).to_numpy())) <= real_pairs
    assert synth["code"].isna().equals(synth["degree"].isna()) and synth["degree"].isna().any()
    # a condition on a derived column is a condition on its parent; an ambiguous one says so
    phd = model.sample(50, conditions={"code": 3})
    assert (phd["degree"] == "phd").all() and (phd["code"] == 3).all()
    with pytest.raises(DataError, match="condition on 'degree'"):
        model.sample(5, conditions={"band": "high"})
    # derivation off, and a target column, keep the columns modelled
    plain = TabularVAE(derive_columns=False, epochs=2, batch_size=100, hidden=(16,), latent_dim=2, verbose=False).fit(df)
    assert "derived" not in {c["kind"] for c in plain.transformer_.columns_}
    targeted = TabularVAE(target="band", epochs=2, batch_size=100, hidden=(16,), latent_dim=2, verbose=False).fit(df)
    assert {c["name"]: c["kind"] for c in targeted.transformer_.columns_}["band"] == "categorical"


def test_derived_columns_survive_save_and_load(tmp_path):
    df = table_with_codes(300)
    model = TabularVAE(epochs=3, batch_size=100, hidden=(16,), latent_dim=2, verbose=False).fit(df)
    model.save(tmp_path / "run")
    again = TabularVAE.load(tmp_path / "run")
    pd.testing.assert_frame_equal(model.sample(200, seed=3), again.sample(200, seed=3))
    def no_constants(name):
        raise AssertionError(f"config.json holds {name}, which strict JSON readers reject")

    doc = json.loads((tmp_path / "run" / "config.json").read_text(), parse_constant=no_constants)
    code = next(c for c in doc["app"]["transformer"]["columns"] if c["name"] == "code")
    assert code["kind"] == "derived" and [None, None] in code["mapping"]


def test_frozen_target_head_stays_in_eval_mode():
    """While the VAE trains, the head is frozen: train() leaves it in eval mode (no dropout noise in
    the loss's head term, which then is the same for the same row); an unfrozen head trains."""

    net = TabularModel({"n_cont": 1, "missing_of": [], "cat_sizes": [2, 3]}, 2, (8,), target_block=(1, 2))
    net.train()
    assert net.head.training and net.encoder.training
    net.head.requires_grad_(False)
    net.train()
    assert not net.head.training and net.encoder.training
    x = torch.tensor([[0.3, 1.0, 0.0, 0.0, 1.0, 0.0]]).repeat(50, 1)
    terms = net.target_log_prob(x)
    assert torch.equal(terms, net.target_log_prob(x)) and torch.all(terms == terms[0])
    net.head.requires_grad_(True)
    net.train()
    assert net.head.training


def test_small_tables_get_no_more_mixture_components_than_their_rows_carry():
    from vaekit.apps.tabular.synthesizer import ROWS_PER_COMPONENT

    quick = dict(epochs=2, batch_size=16, hidden=(16,), latent_dim=2, verbose=False)
    small = make_table(30)
    model = TabularVAE(**quick).fit(small)  # auto: 30 rows carry no component, samples come from N(0, I)
    assert model.model_.latent_components == 0 and len(model.sample(20)) == 20
    mid = TabularVAE(**quick).fit(make_table(5 * ROWS_PER_COMPONENT))
    assert mid.model_.latent_components == 5
    with pytest.raises(vaekit.ConfigError, match="latent_components=50 needs at least as many rows"):
        TabularVAE(latent_components=50, **quick).fit(small)
