"""`toylab lab` without a browser: the WebSocket protocol (Starlette's TestClient runs the real
app in-process), bad input over the socket, the token rule, sessions side by side, saving, and
the command itself as a real server process on a free loopback port."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from starlette.websockets import WebSocketDisconnect

import toylab
from toylab.lab import targets as lab_targets
from toylab.lab.server import create_app
from toylab.lab.session import Session, unpack

with warnings.catch_warnings():  # starlette 1.x asks for httpx2 here; httpx works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
LOCAL = "http://127.0.0.1:8000"
WS = "ws://127.0.0.1:8000/ws"
SMALL = {"nodes": 64, "methods": ["gd", "sp"], "steps": 40, "batch": 10}


class Tab:
    """One page's socket: sends commands, reads JSON messages and binary frames."""

    def __init__(self, ws):
        self.ws = ws
        hello = self.json()
        assert hello["type"] == "hello"
        self.hello = hello

    def send(self, **msg):
        self.ws.send_text(json.dumps(msg))

    def receive(self):
        msg = self.ws.receive()
        if msg.get("bytes") is not None:
            return unpack(msg["bytes"])
        return json.loads(msg["text"]), None

    def json(self):
        msg, arrays = self.receive()
        assert arrays is None, f"expected a JSON message, got a binary {msg['type']}"
        return msg

    def until(self, kind, limit=200):
        """Messages until one of `kind` (an error fails the test unless asked for)."""
        for _ in range(limit):
            msg, arrays = self.receive()
            if msg["type"] == kind:
                return msg, arrays
            if msg["type"] == "error" and kind != "error":
                raise AssertionError(msg["message"])
        raise AssertionError(f"no {kind} message")

    def setup(self, target="spiral", settings=None, **extra):
        self.send(type="setup", setup={"target": target, "settings": settings or SMALL} | extra)
        target_msg, target_arrays = self.until("target")
        frame, arrays = self.until("frame")
        return target_msg, target_arrays, frame, arrays

    def error(self):
        msg, _ = self.until("error")
        return msg["message"]


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(runs_dir=tmp_path / "runs"), base_url=LOCAL) as c:
        yield c


def test_setup_answers_with_the_target_and_frame_zero_then_step_moves_exactly_one(client):
    with client.websocket_connect(WS) as ws:
        tab = Tab(ws)
        assert {"gd", "sp", "soft", "kmeans"} <= set(tab.hello["methods"])
        assert "spiral" in [t["name"] for t in tab.hello["targets"]]
        target, tarrays, frame, arrays = tab.setup()
        assert target["methods"] == ["gd", "sp"] and target["nodes"] == 64
        assert tarrays[("target", "data")].shape == (100, 100)
        assert abs(float(tarrays[("target", "data")].sum()) - 1) < 1e-4
        assert frame["step"] == 0 and set(frame["kl"]) == {"gd", "sp"}
        assert arrays[("gd", "pos")].shape == (64, 2)  # small K: positions for the overlays
        np.testing.assert_array_equal(arrays[("gd", "pos")], arrays[("sp", "pos")])  # same init
        for expected in (1, 2, 3):
            tab.send(type="step")
            frame, _ = tab.until("frame")
            assert frame["step"] == expected


def test_lab_frames_match_toylab_run_for_the_same_flags(client):
    """The lab's run is `toylab run`'s: same init, same data stream, same positions."""
    with client.websocket_connect(WS) as ws:
        tab = Tab(ws)
        tab.setup(settings=SMALL | {"steps": 25})
        tab.send(type="speed", value=0)
        tab.send(type="view", mode="points")
        tab.send(type="play")
        for _ in range(400):
            frame, arrays = tab.until("frame")
            tab.send(type="ack", seq=frame["seq"])
            if frame["done"]:
                break
        assert frame["done"] and frame["step"] == 25
    fit = toylab.fit("spiral", nodes=64, steps=25, batch=10, frames=0)
    for m in ("gd", "sp"):
        np.testing.assert_allclose(arrays[(m, "pos")], fit.nodes[m].astype(np.float32))


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("not json", "JSON object"),
        ("[1, 2]", "JSON object"),
        ('{"type": "fly"}', "unknown message type 'fly'"),
        ('{"type": "speed", "value": 3}', "speed must be one of"),
        ('{"type": "view", "mode": "3d"}', "hist or points"),
        ('{"type": "play"}', "no setup yet"),
        ('{"type": "setup", "setup": {"target": "nowhere"}}', "unknown target 'nowhere'"),
        ('{"type": "setup", "setup": {"target": "image"}}', "unknown target 'image'"),
        ('{"type": "setup", "setup": {"settings": {"nodes": 8}}}', "nodes must be from 16"),
        ('{"type": "setup", "setup": {"settings": {"nodes": 100001}}}', "100,000"),
        ('{"type": "setup", "setup": {"settings": {"nodes": 2.5}}}', "nodes must be an integer"),
        ('{"type": "setup", "setup": {"settings": {"methods": ["gd", "x"]}}}', "unknown method"),
        ('{"type": "setup", "setup": {"settings": {"lr": 5}}}', "unstable for sgd"),
        ('{"type": "setup", "setup": {"settings": {"path": "/etc"}}}', "unknown setting 'path'"),
        ('{"type": "setup", "setup": {"params": {"turns": "many"}}}', "turns must be a float"),
        ('{"type": "setup", "setup": {"params": {"path": "/etc/passwd"}}}', "no parameter 'path'"),
        ('{"type": "setup", "setup": {"target": "drawing", "drawing": "!!"}}', "base64"),
        ('{"type": "upload", "data": "aGVsbG8gd29ybGQ="}', "not an image"),
    ],
)
def test_bad_input_is_answered_with_a_message_and_the_session_lives_on(client, message, expected):
    with client.websocket_connect(WS) as ws:
        tab = Tab(ws)
        ws.send_text(message)
        assert expected in tab.error()
        _, _, frame, _ = tab.setup()  # still serving
        assert frame["step"] == 0


def test_errors_and_targets_name_the_setup_they_answer(client):
    """The page may have several setups in flight; each answer carries the page's id."""
    with client.websocket_connect(WS) as ws:
        tab = Tab(ws)
        tab.send(type="setup", id=7, setup={"settings": {"nodes": 3}})
        tab.send(type="setup", id=8, setup={"settings": SMALL})
        error, _ = tab.until("error")
        assert (error["for"], error["id"]) == ("setup", 7)
        target, _ = tab.until("target")
        assert target["tag"] == 8


def test_binary_messages_are_refused_with_a_message(client):
    with client.websocket_connect(WS) as ws:
        tab = Tab(ws)
        ws.send_bytes(b"\x00\x01")
        assert "JSON text" in tab.error()


def _png(array: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _bomb_png(width: int, height: int) -> str:
    """A tiny PNG whose header claims width x height pixels (decoding it would need GBs)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


def test_uploads_are_validated_and_a_good_picture_becomes_a_drawing(client):
    with client.websocket_connect(WS) as ws:
        tab = Tab(ws)
        tab.send(type="upload", data=_bomb_png(60_000, 60_000))
        assert "decompression bomb" in tab.error()
        tab.send(type="upload", data=_png(np.zeros((20, 30), np.uint8)))
        assert "no mass" in tab.error()
        tab.send(type="upload", data="A" * (lab_targets.MAX_UPLOAD_BYTES * 4 // 3 + 100))
        assert "larger than" in tab.error()
        picture = np.zeros((40, 80), np.uint8)
        picture[10:30, 50:70] = 255  # a bright square right of centre
        tab.send(type="upload", data=_png(picture))
        msg, _ = tab.until("upload")
        pixels = base64.b64decode(msg["pixels"])
        assert len(pixels) == lab_targets.DRAW_SIZE**2
        _, tarrays, _, _ = tab.setup("drawing", drawing=msg["pixels"])
        target = tarrays[("target", "data")]
        cols = target.sum(axis=0)
        assert cols[50:].sum() > 0.99  # the mass sits right of centre, as in the picture
        tab.send(
            type="setup",
            setup={"target": "drawing", "drawing": base64.b64encode(bytes(128 * 128)).decode()},
        )
        assert "drawing is empty" in tab.error()


def test_two_sessions_at_once_are_independent(client):
    with client.websocket_connect(WS) as ws1, client.websocket_connect(WS) as ws2:
        a, b = Tab(ws1), Tab(ws2)
        ta, _, _, _ = a.setup("spiral")
        tb, _, _, _ = b.setup("rings", settings=SMALL | {"nodes": 32, "methods": ["kmeans"]})
        assert ta["methods"] == ["gd", "sp"] and tb["methods"] == ["kmeans"]
        for _ in range(3):
            a.send(type="step")
            fa, _ = a.until("frame")
        b.send(type="step")
        fb, _ = b.until("frame")
        assert (fa["step"], fb["step"]) == (3, 1)
        assert set(fb["kl"]) == {"kmeans"}


def _session_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "toylab-lab-session" and t.is_alive()]


def test_closing_the_tab_stops_its_training_thread(client):
    with client.websocket_connect(WS) as ws:
        tab = Tab(ws)
        tab.setup(settings=SMALL | {"steps": 1_000_000})
        tab.send(type="speed", value=0)
        tab.send(type="play")
        tab.until("frame")
        assert len(_session_threads()) == 1
    deadline = time.monotonic() + 5
    while _session_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _session_threads() == []


def test_session_cap_gives_a_clear_message(tmp_path):
    with TestClient(create_app(runs_dir=tmp_path, max_sessions=1), base_url=LOCAL) as c:
        with c.websocket_connect(WS) as ws1:
            Tab(ws1)
            with c.websocket_connect(WS) as ws2:
                msg = json.loads(ws2.receive_text())
                assert msg["type"] == "error" and "cap" in msg["message"]
        with c.websocket_connect(WS) as ws3:  # the closed tab freed its place
            time.sleep(0.2)
            Tab(ws3)


def test_token_rule(tmp_path):
    app = create_app(token="s3cret-token", runs_dir=tmp_path)
    with TestClient(app, base_url=LOCAL) as c:
        assert c.get("/").status_code == 403
        assert c.get("/static/lab.js").status_code == 403
        assert c.get("/?token=wrong-token").status_code == 403
        with pytest.raises(WebSocketDisconnect), c.websocket_connect(WS) as ws:
            ws.receive_text()
        page = c.get("/?token=s3cret-token")
        assert page.status_code == 200 and "toylab lab" in page.text
        assert c.get("/static/lab.js").status_code == 200  # the cookie the page got
        with c.websocket_connect(WS) as ws:  # cookie
            Tab(ws)
    with (
        TestClient(app, base_url=LOCAL) as fresh,
        fresh.websocket_connect(WS + "?token=s3cret-token") as ws,
    ):
        Tab(ws)


def test_loopback_lab_refuses_other_hosts_and_foreign_origins(tmp_path):
    app = create_app(runs_dir=tmp_path)
    with TestClient(app, base_url="http://evil.example:8000") as c:
        assert c.get("/").status_code == 403  # DNS rebinding: a foreign name for 127.0.0.1
    with TestClient(app, base_url=LOCAL) as c:
        assert c.get("/").status_code == 200
        assert c.get("/", headers={"host": "localhost:8000"}).status_code == 200
        foreign = {"origin": "http://evil.example"}
        with pytest.raises(WebSocketDisconnect), c.websocket_connect(WS, headers=foreign) as ws:
            ws.receive_text()
        with c.websocket_connect(WS, headers={"origin": "http://127.0.0.1:8000"}) as ws:
            Tab(ws)


def test_save_writes_a_run_directory_that_load_run_and_gif_read(client, tmp_path):
    with client.websocket_connect(WS) as ws:
        tab = Tab(ws)
        tab.setup(settings=SMALL | {"steps": 30})
        for _ in range(5):
            tab.send(type="step")
            tab.until("frame")
        tab.send(type="save")
        saved, _ = tab.until("saved")
    out = Path(saved["path"])
    assert out.parent == tmp_path / "runs" and out.name.startswith("lab-")
    record = toylab.load_run(out)
    assert record.config.nodes == 64 and record.config.targets == ["spiral"]
    assert set(record.nodes) == {"gd", "sp"}
    assert record.metrics["targets"][0]["methods"]["sp"]["steps"] == 5
    assert len(record.frames()) >= 1
    for name in ("final.png", "comparison.gif", "report.html", "checkpoint.pt", "kl.csv"):
        assert (out / name).is_file(), name
    from toylab.cli import main as cli_main

    assert cli_main(["gif", str(out), "--out", str(tmp_path / "again.gif")]) == 0


def test_saved_drawing_run_keeps_its_target_as_an_image_file(tmp_path):
    session = Session()
    ink = np.zeros((128, 128), np.uint8)
    ink[20:50, 30:100] = 200
    session.configure(
        {"target": "drawing", "drawing": lab_targets.encode_pixels(ink), "settings": SMALL}
    )
    session.advance(3)
    out = session.save(tmp_path)
    record = toylab.load_run(out)
    path = record.config.target_options["path"]
    assert Path(path) == (out / "target.npy").resolve()
    import densities

    again = densities.get("image", 100, path=path)
    np.testing.assert_allclose(again.array, session.density.array, rtol=1e-9, atol=1e-30)


def test_play_pause_and_the_run_stops_at_its_last_step(client):
    with client.websocket_connect(WS) as ws:
        tab = Tab(ws)
        tab.setup(settings=SMALL | {"steps": 15})
        tab.send(type="speed", value=2)
        tab.send(type="play")
        steps = []
        for _ in range(200):
            frame, _ = tab.until("frame")
            tab.send(type="ack", seq=frame["seq"])
            steps.append(frame["step"])
            if frame["done"]:
                break
        assert steps[-1] == 15 and steps[:3] == [2, 4, 6]  # 2 steps per frame
        assert set(np.diff(steps[:-1])) == {2}
        tab.send(type="step")
        assert "run is done" in tab.error()
        tab.send(type="reset")
        frame, _ = tab.until("frame")
        assert frame["step"] == 0 and not frame["done"]
        state, _ = tab.until("state")
        assert state["playing"] is False  # a finished run does not start again by itself


def _start(args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "toylab", "lab", "--no-browser", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def _url(proc) -> str:
    line = proc.stdout.readline()
    match = re.search(r"serving on (http://\S+)", line)
    assert match, line + proc.stderr.read()
    return match.group(1)


def test_cli_serves_the_page_and_ctrl_c_exits_zero(tmp_path):
    proc = _start(["--runs-dir", str(tmp_path)])
    try:
        url = _url(proc)
        assert url.startswith("http://127.0.0.1:") and "token" not in url
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and "lab.js" in page.text
        assert httpx.get(url + "static/lab.js", timeout=10).status_code == 200
        assert httpx.get(url + "static/../../../etc/passwd", timeout=10).status_code == 404
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)
    assert code == 0


def test_cli_on_another_host_requires_the_printed_token(tmp_path):
    proc = _start(["--host", "0.0.0.0", "--runs-dir", str(tmp_path)])
    try:
        url = _url(proc)
        token = re.search(r"token=([\w-]+)", url).group(1)
        assert len(token) >= 16
        bare = url.split("?")[0]
        assert httpx.get(bare, timeout=10).status_code == 403
        assert httpx.get(url, timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0


def test_cli_bad_values_are_one_line_exit_2(capsys, tmp_path):
    from toylab.cli import main as cli_main

    assert cli_main(["lab", "--no-browser", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert err == "toylab lab: error: --port must be from 0 to 65535, got 70000\n"
    (tmp_path / "file").write_text("x")
    assert cli_main(["lab", "--no-browser", "--runs-dir", str(tmp_path / "file")]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def test_from_mass_letterboxes_like_the_image_target_and_refuses_no_mass(tmp_path):
    import densities

    mass = np.zeros((30, 60))
    mass[5:25, 40:55] = 1.0  # a wide picture: letterboxed, not stretched
    np.save(tmp_path / "m.npy", mass)
    np.testing.assert_allclose(
        densities.from_mass(mass, 50).array,
        densities.get("image", 50, path=str(tmp_path / "m.npy")).array,
        rtol=1e-12,
    )
    with pytest.raises(densities.DensityError, match="no mass"):
        densities.from_mass(np.zeros((8, 8)), 50)
    with pytest.raises(densities.DensityError, match="non-negative"):
        densities.from_mass(-np.ones((8, 8)), 50)
