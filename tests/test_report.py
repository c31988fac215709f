"""report.html: the run's numbers, inlined pictures, interrupted runs, rebuilding from files."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

import pytest

from toylab.cli import driver as runner
from toylab.cli import main as cli_main
from toylab.config import RunConfig
from toylab.run import Run
from toylab.store import rundir
from toylab.viz import report

TINY_RUN = [
    "--target",
    "gaussian",
    "--nodes",
    "200",
    "--steps",
    "50",
    "--batch",
    "10",
    "--frames",
    "4",
    "--bins",
    "32",
    "--quiet",
]


class Page(HTMLParser):
    """The parts of report.html the tests read: metric cells, images, status, config rows."""

    def __init__(self, text: str):
        super().__init__()
        self.cells: dict[tuple[int, str, str], tuple[str, str]] = {}
        self.images: list[str] = []
        self.status: dict[str, str] = {}
        self.config: dict[str, str] = {}
        self._cell: dict[str, str] | None = None
        self._text: list[str] = []
        self._config_key: str | None = None
        self._in_config = False
        self._where: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "data-metric" in a:
            self._cell, self._text = a, []
        elif tag == "img":
            self.images.append(a["src"])
        elif tag == "div" and a.get("id") == "status":
            self.status = a
        elif tag == "table" and "config" in (a.get("class") or ""):
            self._in_config = True
        elif self._in_config and tag in ("th", "td"):
            self._where, self._text = tag, []

    def handle_data(self, data):
        self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            c = self._cell
            self.cells[(int(c["data-target"]), c["data-method"], c["data-metric"])] = (
                "".join(self._text),
                c["data-value"],
            )
            self._cell = None
        elif self._in_config and tag == "th" and self._where == "th":
            self._config_key = "".join(self._text)
        elif self._in_config and tag == "td" and self._where == "td":
            self.config[self._config_key] = "".join(self._text)
        elif tag == "table":
            self._in_config = False


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "r"
    assert cli_main(["run", *TINY_RUN, "--out", str(out)]) == 0
    return out


def test_report_holds_the_runs_numbers(tiny_run):
    page = Page((tiny_run / "report.html").read_text(encoding="utf-8"))
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    (target,) = metrics["targets"]
    for method, values in target["methods"].items():
        for key in ("kl", "js", "tv", "hellinger"):
            text, raw = page.cells[(0, method, key)]
            assert text == f"{values[key]:.4f}"
            assert float(raw) == values[key]  # the exact value rides along
        assert page.cells[(0, method, "real_kl")][0] == f"{target['real_samples']['kl']:.4f}"
        assert page.cells[(0, method, "stray")][0] == str(values["stray"])
        assert page.cells[(0, method, "steps")][0] == "50"
        assert page.cells[(0, method, "seconds")][0] == f"{values['seconds']:.2f}"
    assert page.cells[(0, "real_samples", "kl")][0] == f"{target['real_samples']['kl']:.4f}"
    assert page.status["data-complete"] == "true"
    config = json.loads((tiny_run / "config.json").read_text())
    assert page.config["nodes"] == "200" and page.config["targets"] == '["gaussian"]'
    assert page.config["seed"] == str(config["args"]["seed"])


def test_pictures_are_inlined_and_decode(tiny_run):
    page = Page((tiny_run / "report.html").read_text(encoding="utf-8"))
    kinds = []
    for src in page.images:
        assert src.startswith("data:image/")
        head, data = src.split(",", 1)
        raw = base64.b64decode(data)
        kinds.append(head)
        assert raw[:4] in (b"\x89PNG", b"GIF8", b"<svg")
    assert kinds == ["data:image/gif;base64", "data:image/svg+xml;base64", "data:image/png;base64"]
    gif = base64.b64decode(page.images[0].split(",", 1)[1])
    assert gif == (tiny_run / "comparison.gif").read_bytes()


def test_large_gif_is_referenced_beside_the_report(tiny_run, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    monkeypatch.setattr(report, "INLINE_GIF_MAX", 10)
    report.write_report_from_dir(copy)
    page = Page((copy / "report.html").read_text(encoding="utf-8"))
    assert page.images[0] == "comparison.gif"


def test_rebuilt_from_files_shows_the_same_numbers(tiny_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    before = Page((copy / "report.html").read_text(encoding="utf-8"))
    (copy / "report.html").unlink()
    assert report.write_report_from_dir(copy) == copy / "report.html"
    after = Page((copy / "report.html").read_text(encoding="utf-8"))
    assert after.cells == before.cells and after.config == before.config


def test_text_from_the_command_line_is_escaped(tiny_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    config = json.loads((copy / "config.json").read_text())
    config["args"]["target_options"] = {"text": "<script>alert(1)</script>"}
    (copy / "config.json").write_text(json.dumps(config))
    text = report.write_report_from_dir(copy).read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;" in text


def test_interrupted_sequence_is_marked(tmp_path):
    """Stopped inside the second target: one complete block, one interrupted, a banner."""
    out = tmp_path / "r"
    config = RunConfig(
        targets=["gaussian", "uniform"], nodes=100, steps=20, batch=10, frames=3, bins=16
    ).validate()
    run = Run(config)
    rundir.claim_out(out, force=False)
    rundir.write_config(out, config)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 27  # 20 steps of the first target, 7 of the second

    assert run.advance(stop) is False
    runner.finish(out, run, {"fps": 20, "scale": None, "mp4": False}, quiet=True)
    text = (out / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    assert page.status["data-complete"] == "false"
    assert "Interrupted at step 7 of 20 on target 2/2 (uniform)" in text
    assert f"toylab run --resume {out}" in text
    assert "badge ok" in text and "badge warn" in text
    assert page.cells[(1, "sp", "steps")][0] == "7"
    metrics = json.loads((out / "metrics.json").read_text())
    assert [t["complete"] for t in metrics["targets"]] == [True, False]
    assert page.cells[(1, "gd", "kl")][0] == f"{metrics['targets'][1]['methods']['gd']['kl']:.4f}"


def test_run_status_before_any_step():
    complete, text = report.run_status({"targets": []}, {"targets": ["spiral"], "steps": 10})
    assert not complete and "before the first step" in text


def test_not_a_run_directory(tmp_path):
    from toylab.errors import ToylabError

    with pytest.raises(ToylabError, match="not a toylab run directory"):
        report.write_report_from_dir(tmp_path)
