"""The explorer in a real browser: headless Chromium (Debian's package) driven by Playwright, against
the real server (uvicorn on a free 127.0.0.1 port). A slider, a click on the map and a drag along
the path each change the decoded picture; the page asks nothing of the network and keeps one
decode request in flight at most. Screenshots go to a temporary folder, or to $VAEKIT_SCREENSHOTS."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

import vaekit

pytest.importorskip("starlette", reason="the explorer needs Starlette: pip install 'vaekit[serve]'")
uvicorn = pytest.importorskip("uvicorn", reason="the explorer needs uvicorn: pip install 'vaekit[serve]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need Playwright: pip install playwright")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("browser tests need Debian's chromium (apt-get install chromium); none is on PATH", allow_module_level=True)

from vaekit.apps.explorer import create_app
from vaekit.apps.explorer.server import bind

# headless, and nothing that would reach the network (no downloads, updates or sync)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
pytestmark = pytest.mark.filterwarnings("ignore::vaekit.measure.diagnostics.PosteriorCollapseWarning")


def digits_run(folder: Path, model: str = "vae", latent_dim: int = 3) -> Path:
    cfg = vaekit.Config()
    cfg.training.epochs, cfg.model.latent_dim, cfg.model.model, cfg.training.progress = 2, latent_dim, model, False
    return vaekit.train_run(cfg, out=folder / model)


@contextlib.contextmanager
def serving(run: Path):
    """The explorer for ``run`` served by uvicorn in a thread on a free 127.0.0.1 port; yields its URL."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(run), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the explorer's server did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    with serving(digits_run(tmp_path_factory.mktemp("explorer-browser"))) as address:
        yield address


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("VAEKIT_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


class Traffic:
    """Every request the page makes, the decode requests in flight at once, and the page's errors."""

    def __init__(self, page):
        self.urls, self.errors, self.in_flight, self.most_in_flight, self.decodes = [], [], 0, 0, 0
        page.on("request", self._start)
        page.on("requestfinished", self._end)
        page.on("requestfailed", self._end)
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _start(self, request):
        self.urls.append(request.url)
        if "/api/decode" in request.url or "/api/path" in request.url:
            self.decodes += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def _end(self, request):
        if "/api/decode" in request.url or "/api/path" in request.url:
            self.in_flight -= 1


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.traffic = Traffic(page)
    page.goto(url)
    page.wait_for_function("() => document.querySelector('#decoded').src.startsWith('data:image/png')")
    page.wait_for_function("() => document.querySelector('#thumb-b').src.startsWith('data:image/png')")
    return page


@pytest.fixture
def page(browser, url):
    page = open_page(browser, url)
    yield page
    assert not page.traffic.errors, page.traffic.errors
    assert all(u.startswith((url, "data:")) for u in page.traffic.urls), page.traffic.urls
    page.close()


def src(page) -> str:
    return page.get_attribute("#decoded", "src")


def wait_for_new_picture(page, before: str) -> str:
    page.wait_for_function("(old) => document.querySelector('#decoded').src !== old", arg=before)
    page.wait_for_function("() => !document.querySelector('#status').classList.contains('error')")
    return src(page)


def wait_until_idle(page) -> None:
    """Until the page's decode queue is empty: no request in flight and none waiting."""
    page.wait_for_function("() => !live.busy && live.next === null")


def drag(page, selector: str, start: float, end: float, steps: int = 40) -> None:
    """Press the mouse at fraction ``start`` of an element's width and drag it to ``end``, as a person would."""
    box = page.locator(selector).bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + start * box["width"], y)
    page.mouse.down()
    page.mouse.move(box["x"] + end * box["width"], y, steps=steps)
    page.mouse.up()


def test_the_page_shows_a_picture_sliders_and_the_map(page, shots):
    info = page.evaluate("fetch('/api/info').then(r => r.json())")
    assert page.locator("#sliders input[type=range]").count() == len(info["active"]) >= 1
    assert "digits" in page.inner_text("#summary") and "latent dimensions active" in page.inner_text("#summary")
    assert page.locator("#legend span").count() == 10
    page.screenshot(path=str(shots / "explorer-loaded.png"), full_page=True)


def test_dragging_a_slider_changes_the_picture_one_request_at_a_time(page, shots):
    before = src(page)
    drag(page, "#sliders input >> nth=0", 0.5, 0.95)
    after = wait_for_new_picture(page, before)
    assert after != before
    assert page.traffic.most_in_flight == 1  # the page throttles: one decode in flight, the newest position wins
    wait_until_idle(page)
    value = float(page.input_value("#sliders input >> nth=0"))
    expected = page.evaluate("(z) => fetch('/api/decode', {method: 'POST', body: JSON.stringify({z})}).then(r => r.json())",
                             page.evaluate("state.z"))
    assert value > 1.0 and src(page) == expected["image"]  # the picture shows where the slider ended
    page.screenshot(path=str(shots / "explorer-slider.png"), full_page=True)


def test_clicking_the_map_decodes_that_point(page, shots):
    before, z_before = src(page), page.evaluate("state.z")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + 0.85 * box["width"], box["y"] + 0.15 * box["height"])
    after = wait_for_new_picture(page, before)
    assert after != before and page.evaluate("state.z") != z_before
    page.screenshot(path=str(shots / "explorer-map-click.png"), full_page=True)


@pytest.mark.parametrize("method", ["linear", "spherical"])
def test_dragging_along_the_path_ends_at_example_b(page, shots, method):
    page.check(f"input[name=method][value={method}]")
    before = src(page)
    drag(page, "#t", 0.0, 1.05)
    page.wait_for_function("() => document.querySelector('#t-value').value === '1.00'")
    wait_for_new_picture(page, before)
    wait_until_idle(page)
    b = int(page.input_value("#b"))
    mean_b = page.evaluate(f"fetch('/api/example/{b}').then(r => r.json())")["mean"]
    assert page.evaluate("state.z") == pytest.approx(mean_b, abs=1e-5)  # t = 1 is B's posterior mean
    assert page.traffic.most_in_flight == 1
    page.screenshot(path=str(shots / f"explorer-path-{method}.png"), full_page=True)


def test_choosing_another_example_redraws_its_thumbnail(page):
    before = page.get_attribute("#thumb-a", "src")
    page.fill("#a", "12")
    page.dispatch_event("#a", "change")
    page.wait_for_function("(old) => document.querySelector('#thumb-a').src !== old", arg=before)


def test_the_class_picker_of_a_conditional_model_changes_the_picture(browser, tmp_path, shots):
    with serving(digits_run(tmp_path, model="cvae", latent_dim=2)) as address:
        page = open_page(browser, address)
        assert page.is_visible("#class") and page.locator("#class option").count() == 10
        before = src(page)
        choice = "7" if page.input_value("#class") != "7" else "1"
        page.select_option("#class", choice)
        assert wait_for_new_picture(page, before) != before
        page.screenshot(path=str(shots / "explorer-conditional.png"), full_page=True)
        assert not page.traffic.errors, page.traffic.errors
        page.close()


def test_the_report_opens_offline_with_every_picture_drawn(browser, shots, tmp_path):
    """vaekit report's page in the browser: every inlined picture decodes, nothing is fetched."""
    from vaekit.runs.report import write_report

    page_path = write_report(digits_run(tmp_path))
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    fetched = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(page_path.as_uri())
    widths = page.eval_on_selector_all("img", "images => images.map(i => i.complete ? i.naturalWidth : 0)")
    assert len(widths) >= 5 and all(w > 0 for w in widths)
    assert page.locator("h2", has_text="KL per dimension and active units").count() == 1
    assert [u for u in fetched if not u.startswith(("file:", "data:"))] == []
    page.screenshot(path=str(shots / "report.png"), full_page=True)
    page.close()
