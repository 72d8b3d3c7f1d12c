"""Command line: ``codex-trio app-server`` (and ``python -m codex_trio app-server``)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

import trio

from . import PARENT_PID_AT_START, REFERENCE_VERSION, __version__
from .app import AppServer, ServerOptions
from .logs import setup_logging
from .transport.stdio import open_stdio_transport

# Only what parsing the command line needs of the websocket listener is imported up front; the rest
# when --listen asks for it (a stdio server, the common case, answers initialize sooner without it).
from .ws_args import add_websocket_arguments, websocket_flags_used

if TYPE_CHECKING:
    from .ws_server import WebSocketOptions

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codex-trio",
        description=(
            "The Codex app-server protocol (JSON-RPC 2.0), served from Python on trio. "
            f"Compatible with OpenAI Codex CLI {REFERENCE_VERSION} `codex app-server`."
        ),
    )
    parser.add_argument("--version", action="version", version=f"codex-trio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    server = sub.add_parser(
        "app-server",
        help="serve the app-server protocol (stdio by default)",
        description=(
            "Serve the app-server protocol: newline-delimited JSON-RPC messages on stdin/stdout "
            "(logs go to stderr). Exits when stdin closes, on SIGINT/SIGTERM, or when the parent "
            "process dies. Environment: CODEX_HOME (state, default ~/.codex), CODEX_TRIO_LOG or "
            "RUST_LOG (log level: error, warn, info, debug), LOG_FORMAT=json (JSON log lines)."
        ),
    )
    server.add_argument(
        "--listen",
        default="stdio://",
        metavar="URL",
        help=(
            "where to serve: stdio:// (default: the parent talks on stdin/stdout), ws://HOST:PORT, "
            "or wss://HOST:PORT (with --tls-cert/--tls-key); port 0 picks a free port"
        ),
    )
    add_websocket_arguments(server)
    server.add_argument(
        "-c",
        "--config",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=(
            "override a config.toml value for this run; KEY is a dotted path "
            "(e.g. model_providers.mock.base_url), VALUE is parsed as TOML, else taken as a string; "
            "may be repeated"
        ),
    )
    demo = sub.add_parser(
        "demo",
        help="run one turn through the real server and print it (offline by default)",
        description=(
            "Start `codex-trio app-server` as a subprocess, as an editor would, and drive one turn "
            "through the protocol: initialize, thread/start, turn/start, printing the streamed reply. "
            "By default the model is the bundled local mock (no account, no network)."
        ),
    )
    demo.add_argument("prompt", nargs="?", default=None, help="what to ask (default: a greeting)")
    demo.add_argument(
        "--openai",
        action="store_true",
        help="use the real OpenAI API (key from OPENAI_API_KEY) instead of the mock",
    )
    return parser


async def _watch_signals(cancel_scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s; shutting down", signal.Signals(signum).name)
            cancel_scope.cancel()
            return


async def _watch_parent(cancel_scope: trio.CancelScope, parent: int, interval: float = 1.0) -> None:
    # Polling rather than PR_SET_PDEATHSIG: that signal fires when the parent *thread* exits, and
    # parents often spawn from worker threads that retire (trio's do after 10 s idle). Starting from
    # the pid read at import also catches a parent that died during start-up.
    while os.getppid() == parent:  # noqa: ASYNC110 - nothing signals a reparenting; poll it
        await trio.sleep(interval)
    log.info("parent process %d is gone; shutting down", parent)
    cancel_scope.cancel()


async def serve_app_server(
    options: ServerOptions,
    ws_options: WebSocketOptions | None = None,
    parent: int = PARENT_PID_AT_START,
) -> None:
    """Serve on stdio, or on a websocket listener when ``ws_options`` is given."""
    app = AppServer(options)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_signals, nursery.cancel_scope)
        nursery.start_soon(_watch_parent, nursery.cancel_scope, parent)
        await nursery.start(app.run)
        if ws_options is not None:
            from .ws_server import serve_websocket

            bound = await nursery.start(partial(serve_websocket, app, ws_options))
            print(f"codex-trio: listening on {bound.url}", file=sys.stderr, flush=True)
            await trio.sleep_forever()
        await app.serve_transport(open_stdio_transport(), name="stdio")
        nursery.cancel_scope.cancel()


class UsageError(Exception):
    pass


def _websocket_options(args: argparse.Namespace) -> WebSocketOptions:
    from .ws_server import WebSocketConfigError, websocket_options_from_args

    try:
        return websocket_options_from_args(args, args.listen)
    except WebSocketConfigError as exc:
        raise UsageError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = dict(os.environ)
    setup_logging(env)
    if args.command == "app-server":
        # Checked before trio starts: raised inside a nursery, a usage error would surface wrapped in
        # an ExceptionGroup and end as a traceback.
        ws_options = None
        try:
            if args.listen.startswith(("ws://", "wss://")):
                ws_options = _websocket_options(args)
            elif args.listen != "stdio://":
                raise UsageError(f"unsupported --listen URL {args.listen!r}: expected stdio://, ws:// or wss://")
            elif stray := websocket_flags_used(args):
                raise UsageError(f"{', '.join(stray)} only apply to ws:// and wss://")
        except UsageError as exc:
            print(f"codex-trio: {exc}", file=sys.stderr)
            return 2
        options = ServerOptions(
            env=env,
            cli_overrides=list(args.overrides),
            # Over websocket a dropped connection must not end turns others may be watching.
            turns_outlive_connection=ws_options is not None,
        )
        with contextlib.suppress(KeyboardInterrupt):
            trio.run(serve_app_server, options, ws_options)
        return 0
    if args.command == "demo":
        from .demo import DEFAULT_PROMPT, DemoError, run_demo

        try:
            return trio.run(lambda: run_demo(args.prompt or DEFAULT_PROMPT, use_openai=args.openai))
        except DemoError as exc:
            print(f"codex-trio demo: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
    return 2
