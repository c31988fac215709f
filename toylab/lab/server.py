"""The lab's web server: Starlette routes for the page and one WebSocket per tab.

Each socket gets a `Session` stepped by its own worker thread (numba and numpy release the GIL
for the heavy parts, so the event loop stays responsive). The thread never sends on its own:
it posts messages to the socket's asyncio queue. Frames are paced by the page: a new frame is
built only while fewer than IN_FLIGHT frames await the page's acknowledgement that it drew
them (or after ACK_TIMEOUT), so a slow tab never piles up frames; at "full speed" training goes on between frames.

Security: the page and the socket are refused without the token when one is set (the CLI sets
one for any host but loopback); no message names a path (saving goes to a folder the server
chose); every value is checked by the same rules as `toylab run` and errors become a message.
"""

from __future__ import annotations

import asyncio
import json
import queue
import secrets
import sys
import threading
import time
import traceback
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from densities import DensityError
from toylab.catalog import method_names
from toylab.config import RunConfig
from toylab.errors import ToylabError
from toylab.fitting.nearest import DISTANCES
from toylab.fitting.optim import DEFAULT_LR, OPTIMIZERS
from toylab.fitting.schedule import SCHEDULES
from toylab.lab import session as lab_session
from toylab.lab import targets as lab_targets

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "toylab_lab_token"
MAX_SESSIONS = 8
FRAME_INTERVAL = 1 / 60  # the page never needs frames faster than its display refreshes
ACK_TIMEOUT = 2.0  # frames not acknowledged by then are taken as lost
IN_FLIGHT = 2  # frames sent but not yet drawn: one on screen-to-be, one on the wire
FRAME_SHARE = 2  # at full speed, building frames takes at most half the time (it shows at K = 10^5)
FULL_SPEED_SLICE = 0.008  # seconds of training between checks for commands at full speed
MAX_MESSAGE_BYTES = 4_000_000  # an upload (2 MB as base64) fits; anything larger is refused
SPEEDS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 0)
"""Steps per frame the page offers; below 1 is slow motion, 0 is full speed."""


class Worker(threading.Thread):
    """Steps one session in its own thread, driven by commands from the socket."""

    def __init__(self, emit: Any, runs_dir: Path):
        super().__init__(daemon=True, name="toylab-lab-session")
        self.session = lab_session.Session()
        self.commands: queue.Queue[dict[str, Any]] = queue.Queue()
        self.emit = emit  # thread-safe: str (JSON) or bytes (a frame)
        self.runs_dir = runs_dir
        self.stopped = threading.Event()
        self.playing = False
        self.speed: float = 10
        self.mode = "hist"
        self.unacked = 0  # frames sent and not yet acknowledged as drawn
        self.sent_at = 0.0  # when the last frame was sent
        self.last_frame = 0.0
        self.build_seconds = 0.0  # moving average of the time to build a frame

    def stop(self) -> None:
        self.stopped.set()
        self.commands.put({"type": "_wake"})

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                cmd = self.commands.get(timeout=self._wait())
            except queue.Empty:
                cmd = None
            while cmd is not None and not self.stopped.is_set():
                self._safely(self._handle, cmd)
                try:
                    cmd = self.commands.get_nowait()
                except queue.Empty:
                    cmd = None
            if not self.stopped.is_set() and self._playing():
                self._safely(self._tick)
                if self.session.done:  # the last step: stop playing, as the page shows
                    self.playing = False
                    self._state()

    def _playing(self) -> bool:
        return self.playing and self.session.run is not None and not self.session.done

    def _ready(self) -> bool:
        return self.unacked < IN_FLIGHT or time.perf_counter() - self.sent_at > ACK_TIMEOUT

    def _interval(self) -> float:
        if 0 < self.speed < 1:
            return FRAME_INTERVAL / self.speed  # slow motion
        if self.speed == 0:  # full speed: frames may take at most 1/FRAME_SHARE of the time
            return max(FRAME_INTERVAL, self.build_seconds * FRAME_SHARE)
        return FRAME_INTERVAL

    def _wait(self) -> float:
        """How long to block on the command queue before the next tick has work."""
        if not self._playing():
            return 0.5
        if self.speed == 0:
            return 0.0
        if not self._ready():
            return 0.05  # an ack arrives as a command and wakes us
        return max(0.0, self.last_frame + self._interval() - time.perf_counter())

    def _tick(self) -> None:
        due = time.perf_counter() - self.last_frame >= self._interval()
        if self.speed == 0:
            # Train until the next frame is due (when the page can take one), so frames go
            # out on time; never longer than a slice, so commands are read promptly.
            left = self.last_frame + self._interval() - time.perf_counter()
            budget = min(FULL_SPEED_SLICE, max(0.0005, left)) if self._ready() else FULL_SPEED_SLICE
            self.session.advance_for(budget)
            due = time.perf_counter() - self.last_frame >= self._interval()
            if self._ready() and due or self.session.done:
                self._send_frame()
        elif self._ready() and due:
            self.session.advance(max(1, int(self.speed)))
            self._send_frame()

    def _safely(self, fn: Any, *args: Any) -> None:
        # An error names the command it answers (and the page's id for it, if any), so the
        # page knows which setup was refused even when several are in flight.
        cmd = args[0] if args and isinstance(args[0], dict) else {}
        about = {"for": cmd.get("type"), "id": cmd.get("id")} if cmd else {}
        try:
            fn(*args)
        except (ToylabError, DensityError) as err:
            self.emit(json.dumps({"type": "error", "message": str(err)} | about))
        except Exception as err:  # a bug must not kill the session or the server
            traceback.print_exc(file=sys.stderr)
            self.playing = False
            msg = f"internal error ({type(err).__name__}: {err}); the session is paused"
            self.emit(json.dumps({"type": "error", "message": msg} | about))

    def _send_frame(self) -> None:
        t0 = time.perf_counter()
        message = self.session.frame(self.mode)
        self.build_seconds = 0.8 * self.build_seconds + 0.2 * (time.perf_counter() - t0)
        self.emit(message)
        self.unacked += 1
        self.sent_at = self.last_frame = time.perf_counter()

    def _state(self) -> None:
        self.emit(json.dumps({"type": "state", "playing": self._playing(), "speed": self.speed}))

    # -- commands -----------------------------------------------------------------------
    def _handle(self, cmd: dict[str, Any]) -> None:
        kind = cmd.get("type")
        if kind == "_wake":
            return
        if kind == "ack":
            self.unacked = max(0, self.unacked - 1)
        elif kind == "setup":
            self.session.configure(cmd.get("setup"), tag=cmd.get("id"))
            self.unacked = 0
            self.emit(self.session.target_message())
            self._send_frame()
            if cmd.get("play") is not None:
                self.playing = bool(cmd["play"])
            self._state()
        elif kind == "play":
            self.session._need_run()
            if self.session.done:
                raise ToylabError("the run is done: reset it, or raise steps")
            self.playing = True
            self._state()
        elif kind == "pause":
            self.playing = False
            self._state()
            if self.session.run is not None:
                self._send_frame()
        elif kind == "step":
            self.playing = False
            if self.session.done:
                raise ToylabError("the run is done: reset it, or raise steps")
            self.session.advance(1)
            self._send_frame()
            self._state()
        elif kind == "reset":
            self.session.reset()
            self.emit(self.session.target_message())
            self._send_frame()
            self._state()
        elif kind == "speed":
            value = cmd.get("value")
            if value not in SPEEDS or isinstance(value, bool):
                raise ToylabError(f"speed must be one of {', '.join(map(str, SPEEDS))}")
            self.speed = value
            self._state()
        elif kind == "view":
            if cmd.get("mode") not in ("hist", "points"):
                raise ToylabError("view mode must be hist or points")
            self.mode = cmd["mode"]
            if self.session.run is not None:
                self._send_frame()
        elif kind == "upload":
            pixels = lab_targets.decode_upload(cmd.get("data"), bool(cmd.get("invert", False)))
            self.emit(json.dumps({"type": "upload", "pixels": lab_targets.encode_pixels(pixels)}))
        elif kind == "save":
            self.emit(json.dumps({"type": "saving"}))
            out = self.session.save(self.runs_dir)
            self.emit(json.dumps({"type": "saved", "path": str(out), "name": out.name}))
        else:
            raise ToylabError(
                f"unknown message type {kind!r}; the lab takes setup, play, pause, step, reset,"
                " speed, view, upload, save, ack"
            )


def hello() -> dict[str, Any]:
    """What the page needs to build its form: targets, methods, choices, limits, defaults."""
    defaults = RunConfig()
    return {
        "type": "hello",
        "targets": lab_targets.catalogue(),
        "methods": method_names(),
        "choices": {
            "optimizer": list(OPTIMIZERS),
            "distance": list(DISTANCES),
            "beta_schedule": list(SCHEDULES),
        },
        "default_lr": DEFAULT_LR,
        "defaults": {k: getattr(defaults, k) for k in lab_session.SETTINGS}
        | lab_session.DEFAULT_SETUP["settings"],
        "default_setup": lab_session.DEFAULT_SETUP,
        "limits": {
            "min_nodes": lab_session.MIN_NODES,
            "max_nodes": lab_session.MAX_NODES,
            "max_bins": lab_session.MAX_BINS,
            "max_steps": lab_session.MAX_STEPS,
            "max_batch": lab_session.MAX_BATCH,
            "overlay_max_nodes": lab_session.OVERLAY_MAX_NODES,
            "max_upload_bytes": lab_targets.MAX_UPLOAD_BYTES,
            "region_grid": lab_session.REGION_GRID,
        },
        "speeds": list(SPEEDS),
        "draw_size": lab_targets.DRAW_SIZE,
    }


LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _hostname(netloc: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1', '[::1]:8000' -> '::1'."""
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


class TokenGate:
    """ASGI middleware, the lab's access rule. With a token, every request and socket must
    carry it (query `token=` or the cookie the page receives when opened with it). Without
    one (loopback only), the Host must be a loopback name, so a web page cannot reach the lab
    through DNS rebinding. Always, a socket's Origin must be the page's own host, so another
    site open in the browser cannot drive a session. Others get 403."""

    def __init__(self, app: Any, token: str | None):
        self.app = app
        self.token = token

    def allowed(self, scope: dict[str, Any]) -> bool:
        host = _header(scope, b"host") or ""
        if scope["type"] == "websocket":
            origin = _header(scope, b"origin")
            if origin is not None and origin.split("://", 1)[-1] != host:
                return False
        if not self.token:
            return _hostname(host) in LOOPBACK_NAMES
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = query.get("token", [""])[0]
        if given and secrets.compare_digest(given, self.token):
            return True
        cookie = _header(scope, b"cookie")
        if cookie:
            jar = SimpleCookie()
            try:
                jar.load(cookie)
            except Exception:
                return False
            if COOKIE in jar and secrets.compare_digest(jar[COOKIE].value, self.token):
                return True
        return False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and not self.allowed(scope):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            text = (
                "toylab lab: this server needs its token; open the URL it printed at start"
                if self.token
                else "toylab lab: open the lab as http://127.0.0.1:PORT/ (loopback only)"
            )
            response = PlainTextResponse(text, status_code=403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(
    token: str | None = None, runs_dir: str | Path = "runs", max_sessions: int = MAX_SESSIONS
) -> Any:
    """The lab as an ASGI app (wrapped in the token gate when `token` is set)."""
    runs = Path(runs_dir)
    active: set[Worker] = set()

    async def index(request: Any) -> HTMLResponse:
        response = HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))
        response.headers["Cache-Control"] = "no-store"
        if token:
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        if len(active) >= max_sessions:
            await websocket.send_text(
                json.dumps(
                    {
                        "type": "error",
                        "fatal": True,
                        "message": f"the lab already runs {max_sessions} sessions (its cap); "
                        "close another tab and reload",
                    }
                )
            )
            await websocket.close(code=1013)
            return
        loop = asyncio.get_running_loop()
        outbox: asyncio.Queue[Any] = asyncio.Queue()

        def emit(message: Any) -> None:
            if worker.stopped.is_set():
                return  # the tab is gone: nobody to tell
            try:
                loop.call_soon_threadsafe(outbox.put_nowait, message)
            except RuntimeError:  # the event loop already closed (server shutting down)
                worker.stopped.set()

        worker = Worker(emit, runs)
        active.add(worker)
        worker.start()

        async def sender() -> None:
            while True:
                message = await outbox.get()
                if message is None:
                    return
                if isinstance(message, bytes):
                    await websocket.send_bytes(message)
                else:
                    await websocket.send_text(message)

        send_task = asyncio.create_task(sender())
        emit(json.dumps(hello()))
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                error = None
                if text is None:
                    error = "the lab takes JSON text messages, not binary ones"
                elif len(text) > MAX_MESSAGE_BYTES:
                    error = f"message too large (over {MAX_MESSAGE_BYTES:,} bytes)"
                else:
                    try:
                        cmd = json.loads(text)
                    except ValueError:
                        cmd = None
                        error = "a message must be a JSON object with a type"
                    if cmd is not None and not isinstance(cmd, dict):
                        error = "a message must be a JSON object with a type"
                if error:
                    emit(json.dumps({"type": "error", "message": error}))
                else:
                    worker.commands.put(cmd)
        except WebSocketDisconnect:
            pass
        finally:
            worker.stop()
            active.discard(worker)
            outbox.put_nowait(None)
            send_task.cancel()
            await asyncio.gather(send_task, return_exceptions=True)

    app = Starlette(
        routes=[
            Route("/", index),
            WebSocketRoute("/ws", socket),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )
    app.state.active = active
    return TokenGate(app, token)
