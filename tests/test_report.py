"""report.html: well-formed, self-contained, every embedded picture decodes."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from nnrun.evaluate import evaluate_run
from nnrun.report import write_report
from tests.test_evaluate import train_tiny

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """Collects images, links, ids and text; checks that every non-void tag is closed in order."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.problems, self.images, self.urls, self.ids = [], [], [], [], set()
        self.text = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("src", "href"):
            if key in a and tag != "img":
                self.urls.append(a[key])
        if tag in ("script", "link", "iframe"):
            self.problems.append(f"unexpected <{tag}>")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert not page.problems and not page.stack, (page.problems, page.stack)
    return page


def decode_all(page: Page) -> list:
    images = []
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), src[:60]
        img = mpimg.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)), format="png")
        assert img.ndim == 3 and min(img.shape[:2]) >= 100
        images.append(img)
    return images


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    run = train_tiny(tmp_path_factory.mktemp("runs"))
    evaluate_run(run, "test")
    evaluate_run(run, "validation", make_plots=False)
    return run


def test_report_is_self_contained_and_every_image_decodes(run):
    page = parse(run / "report.html")
    images = decode_all(page)
    pngs = sorted((run / "plots").glob("*.png"))
    assert len(images) == len(pngs) >= 7  # curves, lr, confusion, misclassified, predictions, per-class, weights
    assert all(u.startswith("#") for u in page.urls), page.urls  # in-page links only, no network


def test_report_shows_config_summary_epochs_and_evaluations(run):
    page = parse(run / "report.html")
    text = " ".join(page.text)
    summary = json.loads((run / "summary.json").read_text())
    test = json.loads((run / "evaluation-test.json").read_text())
    assert {"summary", "curves", "epochs", "eval-test", "eval-validation", "weights", "config"} <= page.ids
    assert f"{100 * summary['test_accuracy']:.2f}%" in text
    assert "quickstart" in text and "completed" in text
    assert "Per-class metrics" in text and "macro avg" in text and "One vs rest" in text
    assert "Most frequent confusions" in text and "validation split" in text
    assert "optimizer:" in text and "validation_split: 0.1" in text  # the resolved config
    assert str(test["num_samples"]) in text


def test_report_of_a_training_only_folder(run, tmp_path):
    """A fresh run folder (no evaluation yet) and even a bare one still give a valid page."""
    for name in ("config.yaml", "summary.json", "metrics.json"):
        (tmp_path / name).write_bytes((run / name).read_bytes())
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "learning_curves.png").write_bytes((run / "plots" / "learning_curves.png").read_bytes())
    page = parse(write_report(tmp_path))
    assert len(decode_all(page)) == 1 and "eval-test" not in page.ids
    bare = tmp_path / "bare"
    bare.mkdir()
    page = parse(write_report(bare))
    assert page.images == [] and "summary.json is missing" in " ".join(page.text)


def test_text_is_escaped(run, tmp_path):
    for name in ("config.yaml", "metrics.json"):
        (tmp_path / name).write_bytes((run / name).read_bytes())
    summary = json.loads((run / "summary.json").read_text())
    summary.update(error="x < y & <b>z</b>", status="failed")
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    html = write_report(tmp_path).read_text()
    assert "x &lt; y &amp; &lt;b&gt;z&lt;/b&gt;" in html
    parse(tmp_path / "report.html")
