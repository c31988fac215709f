"""`toylab lab`: the live, interactive DDN lab in the browser (see toylab.lab)."""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import socket
import sys
import threading
from pathlib import Path

from toylab.errors import ToylabError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DEFAULT_PORT = 8000


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lab",
        help="the live lab: a local web page to pick or draw a target and watch DDN learn",
        description=(
            "Start a local web server and open the lab page: pick a target (every registry "
            "target with its parameters), draw one or upload a picture, choose K and the methods, "
            "then play, pause, step and change speed while every method trains side by side "
            "exactly as `toylab run` fits them. The setup lives in the page's URL (a shared link "
            "opens the same experiment); 'Save run' writes a normal run directory under "
            "--runs-dir. Ctrl-C stops the server."
        ),
        epilog=(
            "On 127.0.0.1 (the default) only this machine can connect. With another --host "
            "(a classroom LAN: --host 0.0.0.0) the server prints a token and puts it in the URL, "
            "as Jupyter does; pages and sockets without it are refused. "
            "example: toylab lab --host 0.0.0.0 --port 8000"
        ),
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"TCP port (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; any other needs the token)",
    )
    p.add_argument(
        "--no-browser", action="store_true", help="do not open the page in the default browser"
    )
    p.add_argument(
        "--token",
        default=None,
        help="the access token (default: a random one when --host is not loopback, none on it)",
    )
    p.add_argument(
        "--runs-dir",
        type=Path,
        default=Path("runs"),
        metavar="DIR",
        help="where 'Save run' writes its run directories, lab-<time> (default runs)",
    )
    p.add_argument(
        "--max-sessions",
        type=int,
        default=8,
        metavar="N",
        help="most tabs training at once (default 8; each holds up to K = 100,000 nodes)",
    )
    p.set_defaults(func=main)


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line ToylabError."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if port and "in use" in str(err).lower():
            raise ToylabError(
                f"--port {port} is in use; choose another (--port 0 picks a free one)"
            ) from None
        raise ToylabError(f"cannot listen on --host {host} --port {port}: {err.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def main(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ToylabError(f"--port must be from 0 to 65535, got {args.port}")
    if args.max_sessions < 1:
        raise ToylabError(f"--max-sessions must be an integer >= 1, got {args.max_sessions}")
    if args.token is not None and (len(args.token) < 8 or not args.token.isascii()):
        raise ToylabError("--token must be at least 8 ASCII characters")
    if args.runs_dir.exists() and not args.runs_dir.is_dir():
        raise ToylabError(f"--runs-dir {args.runs_dir} is a file, not a directory")
    token = args.token
    if args.host not in LOOPBACK and token is None:
        token = secrets.token_urlsafe(18)
    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]

    import uvicorn

    from toylab.cli.driver import set_threads
    from toylab.compiled import warm_up_kernels
    from toylab.lab.server import MAX_MESSAGE_BYTES, create_app

    set_threads(None)
    # Session threads hold the GIL between numba calls; a short switch interval lets the
    # event loop (frames out, acknowledgements in) get it back within a millisecond.
    sys.setswitchinterval(0.001)
    # Compile (or load) the numba kernels while the page loads, not in the first setup.
    threading.Thread(target=warm_up_kernels, daemon=True).start()
    app = create_app(token=token, runs_dir=args.runs_dir, max_sessions=args.max_sessions)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    if ":" in shown:
        shown = f"[{shown}]"
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    print(f"toylab lab: serving on {url}", flush=True)
    if args.host in ("0.0.0.0", "::"):
        print(
            f"toylab lab: from other machines use http://{socket.gethostname()}:{port}/"
            f"?token={token} (or this machine's LAN address)",
            flush=True,
        )
    print("toylab lab: press Ctrl-C to stop", flush=True)
    if not args.no_browser:
        import webbrowser

        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    config = uvicorn.Config(
        app,
        log_level="warning",
        ws_max_size=MAX_MESSAGE_BYTES + 1024,
        # Frames are fresh binary arrays on a loopback or LAN link: compressing them would
        # cost more CPU (taken from training) than the bytes it saves.
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=1,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    print("toylab lab: stopped", file=sys.stderr, flush=True)
    return 0
