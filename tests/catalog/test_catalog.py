"""The catalog: a static site of a store, every internal link resolving, store text shown as
text, opened in a real headless browser (Debian's ``chromium``; skipped with the reason when it
is not installed), on a local store and the S3 API server.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kerascut_core.catalog import build_catalog
from kerascut_core.publishing import promote, stage_candidate
from kerascut_core.publishing.commit import commit_version
from kerascut_core.publishing.consumer_registry import register_consumer
from kerascut_core.stores import open_store
from tests.support.cli import kerascut
from tests.support.diff_world import BASE, NAME, manifest, model_files, publish_world

STORE_KINDS = ("local", "s3")
EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return model_files(tmp_path_factory.mktemp("models"))


def _world(store, files, tmp_path) -> None:
    """det: three versions, an alias, a consumer; the last version's layer names hold HTML and
    script, and it has a picture."""
    publish_world(store, files, ["v-base", "v-weights"])
    fields = copy.deepcopy(BASE)
    fields["outputs"][0]["address"] = EVIL
    fields["preprocessing"]["layers"][0]["address"] = EVIL
    svg = tmp_path / "graph.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><script>alert(3)</script>'
                   '<rect width="40" height="20" fill="#2456c7"/></svg>')
    uri = stage_candidate(store, NAME, "v-evil", {"model.keras": files["base"], "graph.svg": svg})
    commit_version(store, NAME, "v-evil", uri, manifest("v-evil", fields))
    promote(store, NAME, "v-weights", alias="prod", reason=EVIL)
    register_consumer(store, NAME, "detector", follows="prod", outputs=["C4"], reason=EVIL)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.targets += [v for k, v in attrs if k in ("href", "src") and v]


def _pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_the_catalog_links_resolve_and_store_text_stays_text(store, files, tmp_path):
    _world(store, files, tmp_path)
    report = build_catalog(store, tmp_path / "site")
    assert (report.backbones, report.versions, report.pages, report.problems) == (1, 3, 5, [])
    site = tmp_path / "site"
    assert {p.relative_to(site).as_posix() for p in _pages(site)} == {
        "index.html", f"b/{NAME}/index.html", f"b/{NAME}/v-base/index.html", f"b/{NAME}/v-weights/index.html",
        f"b/{NAME}/v-evil/index.html"}
    for page in _pages(site):
        parser = _Links()
        text = page.read_text()
        parser.feed(text)
        assert "script" not in parser.tags and "<img src=x" not in text, page
        for target in parser.targets:
            assert (page.parent / target).resolve().is_file(), f"{page}: {target}"
    evil = (site / "b" / NAME / "v-evil" / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in evil
    assert '<img class="graph" src="graph.svg"' in evil and (site / "b" / NAME / "v-evil" / "graph.svg").is_file()
    backbone = (site / "b" / NAME / "index.html").read_text()
    assert backbone.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # the move's reason, the consumer's
    index = (site / "index.html").read_text()
    assert "detector" in index and "prod" in index and "C4: 4 ch, stride 4x4" in index


def test_rebuilding_replaces_the_whole_directory(tmp_path, files):
    store = open_store(str(tmp_path / "store"))
    publish_world(store, files, ["v-base"])
    out = tmp_path / "site"
    build_catalog(store, out)
    (out / "stale.html").write_text("old")
    result = kerascut("catalog", store.root_uri, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"catalog of {store.root_uri}: 1 backbones, 1 versions, 3 pages in {out}"
    assert not (out / "stale.html").exists() and (out / "index.html").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".site")] == []


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_catalog_in_a_real_headless_browser(files, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    store = open_store(str(tmp_path / "store"))
    _world(store, files, tmp_path)
    site = tmp_path / "site"
    build_catalog(store, site)
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900"]
    for page, shot in ((site / "index.html", "index.png"), (site / "b" / NAME / "v-evil" / "index.html", "version.png")):
        done = subprocess.run([*base, f"--screenshot={tmp_path / shot}", page.as_uri()], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        data = (tmp_path / shot).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    dom = subprocess.run([*base, "--dump-dom", (site / "b" / NAME / "v-evil" / "index.html").as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<script" not in dom.stdout.lower()  # no script element: the layer name is text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom.stdout
