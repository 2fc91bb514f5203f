"""vaekit serve's app (vaekit.apps.explorer) through Starlette's TestClient: every route on a small
digits run, a conditional run and a table run; bad requests answered 4xx in JSON, after which
the server still answers; decoding is a function of z."""

from __future__ import annotations

import base64
import io
import json
import sys

import pytest
import torch

import vaekit

pytest.importorskip("starlette", reason="the explorer needs Starlette: pip install 'vaekit[serve]'")
pytest.importorskip("uvicorn", reason="the explorer needs uvicorn: pip install 'vaekit[serve]'")
from PIL import Image
from starlette.testclient import TestClient

from vaekit.apps import explorer
from vaekit.apps.explorer import create_app
from vaekit.apps.explorer.server import bind
from vaekit.errors import ConfigError

# two epochs leave a collapsed or nearly collapsed code at times; the explorer must serve it all the same
pytestmark = pytest.mark.filterwarnings("ignore::vaekit.measure.diagnostics.PosteriorCollapseWarning")


def _config(latent_dim: int = 3, epochs: int = 2):
    cfg = vaekit.Config()
    cfg.training.epochs = epochs
    cfg.model.latent_dim = latent_dim
    cfg.training.progress = False
    return cfg


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return vaekit.train_run(_config(), out=tmp_path_factory.mktemp("explorer") / "digits")


@pytest.fixture(scope="module")
def client(run):
    return TestClient(create_app(run))


def pixels(uri: str):
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def decode(client, z, **extra):
    response = client.post("/api/decode", json={"z": z, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_info_describes_the_run(client):
    info = client.get("/api/info").json()
    assert (info["latent_dim"], info["kind"], info["data_shape"], info["conditional"]) == (3, "image", [1, 8, 8], False)
    assert info["class_names"] == [str(k) for k in range(10)]
    dims = [a["dim"] for a in info["active"]]
    assert dims and set(dims) <= {0, 1, 2} and len(set(dims)) == len(dims)
    kls = [a["kl"] for a in info["active"]]
    assert kls == sorted(kls, reverse=True) and kls == [info["kl_per_dim"][d] for d in dims]


def test_the_map_and_its_basis_take_points_back_to_latent_vectors(client):
    m = client.get("/api/map").json()
    points, n = torch.tensor(m["points"]), client.get("/api/info").json()["examples"]
    assert points.shape == (n, 2) and len(m["labels"]) == n and m["pca"] is True
    basis, centre = torch.tensor(m["basis"], dtype=torch.float64), torch.tensor(m["centre"], dtype=torch.float64)
    assert torch.allclose(basis @ basis.T, torch.eye(2, dtype=torch.float64), atol=1e-6)  # orthonormal directions
    for i in (0, 7, n - 1):
        mean = torch.tensor(client.get(f"/api/example/{i}").json()["mean"], dtype=torch.float64)
        assert torch.allclose((mean - centre) @ basis.T, points[i].double(), atol=1e-4)
    assert m["explained"][0] >= m["explained"][1] > 0


def test_decoding_is_a_function_of_z(client):
    a, again, b = decode(client, [0.5, -1.0, 0.2]), decode(client, [0.5, -1.0, 0.2]), decode(client, [-2.0, 2.0, 1.0])
    assert pixels(a["image"]).size == (8, 8)
    assert a["image"] == again["image"]
    assert a["image"] != b["image"]
    assert a["z"] == pytest.approx([0.5, -1.0, 0.2]) and a["ms"] >= 0


def test_an_example_and_the_decode_of_its_mean(client, run):
    _, _, data = vaekit.run_data(run)
    ex = client.get("/api/example/3").json()
    assert ex["label"] == int(data.test_labels[3]) and ex["index"] == 3 and len(ex["mean"]) == 3
    assert pixels(ex["image"]).size == (8, 8)


@pytest.mark.parametrize("method", ["linear", "spherical"])
def test_the_path_starts_and_ends_at_the_examples_means(client, method):
    means = [client.get(f"/api/example/{i}").json()["mean"] for i in (0, 5)]
    for t, mean in ((0.0, means[0]), (1.0, means[1])):
        point = client.post("/api/path", json={"a": 0, "b": 5, "t": t, "method": method}).json()
        assert point["z"] == pytest.approx(mean, abs=1e-5)
        assert point["image"] == decode(client, point["z"])["image"]
    middle = client.post("/api/path", json={"a": 0, "b": 5, "t": 0.5, "method": method}).json()
    assert middle["image"] not in (decode(client, means[0])["image"], decode(client, means[1])["image"])


def test_linear_and_spherical_paths_differ_in_the_middle(client):
    points = [client.post("/api/path", json={"a": 0, "b": 5, "t": 0.5, "method": m}).json()["z"] for m in ("linear", "spherical")]
    assert points[0] != pytest.approx(points[1])


BAD_POSTS = {
    "wrong length": ("/api/decode", {"z": [0.0, 0.0]}, "latent_dim is 3"),
    "too long": ("/api/decode", {"z": [0.0] * 4}, "latent_dim is 3"),
    "NaN": ("/api/decode", '{"z": [NaN, 0, 0]}', "NaN"),
    "infinity": ("/api/decode", '{"z": [Infinity, 0, 0]}', "too large"),
    "overflowing float": ("/api/decode", '{"z": [1e400, 0, 0]}', "too large"),
    "huge": ("/api/decode", {"z": [0.0, 5e3, 0.0]}, "too large"),
    "huge integer": ("/api/decode", '{"z": [0, 0, ' + "9" * 400 + "]}", "too large"),
    "missing z": ("/api/decode", {}, "needs z"),
    "z not a list": ("/api/decode", {"z": "0,0,0"}, "list"),
    "string coordinate": ("/api/decode", {"z": [0, "1", 0]}, "must be a number"),
    "boolean coordinate": ("/api/decode", {"z": [0, True, 0]}, "must be a number"),
    "class for an unconditional model": ("/api/decode", {"z": [0, 0, 0], "y": 1}, "not conditional"),
    "not JSON": ("/api/decode", "{z: [0, 0, 0]", "not JSON"),
    "not an object": ("/api/decode", "[0, 0, 0]", "JSON object"),
    "too big": ("/api/decode", '{"z": [' + ", ".join(["0"] * 40000) + "]}", "bytes"),
    "path: t out of range": ("/api/path", {"a": 0, "b": 1, "t": 1.5}, "[0, 1]"),
    "path: example out of range": ("/api/path", {"a": 0, "b": 10**6, "t": 0.5}, "out of range"),
    "path: negative example": ("/api/path", {"a": -1, "b": 1, "t": 0.5}, "out of range"),
    "path: unknown method": ("/api/path", {"a": 0, "b": 1, "t": 0.5, "method": "cubic"}, "linear"),
    "path: missing t": ("/api/path", {"a": 0, "b": 1}, "needs t"),
    "path: fractional index": ("/api/path", {"a": 0.5, "b": 1, "t": 0.5}, "integer"),
}


@pytest.mark.parametrize("case", BAD_POSTS, ids=list(BAD_POSTS))
def test_a_bad_request_gets_a_4xx_json_error_and_the_next_one_is_served(client, case):
    route, body, message = BAD_POSTS[case]
    content = body if isinstance(body, str) else json.dumps(body)
    response = client.post(route, content=content, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert message in response.json()["error"] and "\n" not in response.json()["error"]
    assert pixels(decode(client, [0.1, 0.2, 0.3])["image"]).size == (8, 8)


@pytest.mark.parametrize(("method", "url", "status"), [
    ("GET", "/api/nothing", 404), ("GET", "/api/example/100000", 404), ("GET", "/api/example/-2", 400),
    ("GET", "/api/example/two", 400), ("GET", "/api/decode", 405), ("POST", "/api/info", 405),
    ("GET", "/static/missing.js", 404), ("DELETE", "/", 405),
])
def test_unknown_routes_and_methods_get_json_errors(client, method, url, status):
    response = client.request(method, url)
    assert response.status_code == status
    assert response.json()["error"]
    assert client.get("/api/info").status_code == 200


def test_the_page_and_its_files_come_from_the_app_alone(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    texts = [page.text] + [client.get(f"/static/{name}").text for name in ("explorer.js", "style.css")]
    assert all(client.get(f"/static/{name}").status_code == 200 for name in ("explorer.js", "style.css"))
    assert "/static/explorer.js" in page.text
    assert not any("http://" in t or "https://" in t or "//cdn" in t for t in texts)  # nothing from the network


def test_a_taken_port_is_a_one_line_config_error():
    sock = bind("127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match="choose another port"):
            bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


@pytest.mark.parametrize("port", [-1, 65536])
def test_a_port_outside_the_tcp_range_is_a_config_error(port):
    with pytest.raises(ConfigError, match="not a TCP port"):
        bind("127.0.0.1", port)


def test_without_the_web_framework_the_error_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] == "starlette"] + ["starlette"]:
        monkeypatch.setitem(sys.modules, name, None)  # importing it now fails as if it were not installed
    monkeypatch.delitem(sys.modules, "vaekit.apps.explorer.server")
    monkeypatch.delattr(explorer, "server")  # else 'from vaekit.apps.explorer import server' finds the attribute
    with pytest.raises(ConfigError, match=r"pip install 'vaekit\[serve\]'"):
        explorer.create_app("any-run")


def test_a_conditional_model_decodes_the_class_it_is_given(tmp_path):
    cfg = _config(latent_dim=2, epochs=2)
    cfg.model.model = "cvae"
    client = TestClient(create_app(vaekit.train_run(cfg, out=tmp_path / "cvae")))
    info = client.get("/api/info").json()
    assert info["conditional"] and info["num_classes"] == 10 and client.get("/api/map").json()["pca"] is False
    images = {decode(client, [0.0, 0.0], y=k)["image"] for k in (0, 1, 7)}
    assert len(images) == 3
    for body, message in (({"z": [0, 0]}, "give y"), ({"z": [0, 0], "y": 10}, "out of range"),
                          ({"z": [0, 0], "y": "3"}, "integer"), ({"z": [0, 0], "y": True}, "integer")):
        response = client.post("/api/decode", json=body)
        assert response.status_code == 400 and message in response.json()["error"]
    point = client.post("/api/path", json={"a": 0, "b": 1, "t": 0.0, "y": 4}).json()
    assert point["y"] == 4


def test_a_table_model_decodes_named_values_in_the_files_units(tmp_path):
    table = tmp_path / "rows.csv"
    table.write_text("height,weight\n" + "".join(f"{150 + i % 40},{50 + (i * 7) % 30}\n" for i in range(200)))
    cfg = _config(latent_dim=2, epochs=2)
    cfg.data.name = str(table)
    client = TestClient(create_app(vaekit.train_run(cfg, out=tmp_path / "table")))
    assert client.get("/api/info").json()["kind"] == "table"
    row = decode(client, [0.0, 0.0])["table"]
    assert row["columns"] == ["height", "weight"]
    assert 140 < row["values"][0] < 200 and 40 < row["values"][1] < 90  # in the file's units, not standardised
    ex = client.get("/api/example/0").json()["table"]
    assert ex["columns"] == ["height", "weight"]
    height = ex["values"][0]  # a value of the file, back from standardised float32
    assert height == pytest.approx(round(height), abs=1e-3) and 150 <= round(height) < 190
