"""The websocket listener: ``--listen ws://IP:PORT`` (or ``wss://`` with a certificate).

Each TCP connection goes through, in order:
1. TLS, for wss;
2. the HTTP request head, read and parsed here with h11. Plain HTTP is answered here: ``/readyz`` and
   ``/healthz`` probes, 403 for any request that carries an ``Origin`` header (a browser page must never
   drive a local agent), 404 for anything else, 401 for an upgrade that fails authentication. Nothing of
   the websocket exists yet, so a refused client costs no more than a parse;
3. the websocket handshake, by trio-websocket: the bytes already read are replayed in front of the
   stream, and trio-websocket's own server handshake (``wrap_server_stream``) parses them again and
   answers 101;
4. one JSON-RPC session (``AppServer.serve_transport``) per connection, each with its own handshake
   state, notification opt-outs and pending server->client requests.

Why not let trio-websocket answer HTTP itself: its server handshake only knows websocket upgrades and
answers any other request with 400, and it decides before our code sees the request. Parsing the head
first, and replaying it, keeps trio-websocket (through its public API only) as the websocket
implementation while plain HTTP gets real answers.

Backpressure: every connection has its own bounded outbound queue (see ``rpc.session.Limits``).
Notifications never wait for room, so the task fanning a thread's events out is never held up by one
slow reader; replies to a client's own requests do wait, which slows only that client. A client that
has stopped reading is disconnected once a write to it has made no progress for
``slow_reader_timeout`` with its queue full, or at once when the queue reaches its hard limit. Turns it
started are not tied to its socket (they run in the server's nursery) and stay resumable.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import ssl
import sys
from dataclasses import dataclass, replace
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import h11
import trio
import trio_websocket

from .transport.framing import DEFAULT_MAX_LINE
from .transport.websocket import (
    GOING_AWAY,
    NORMAL_CLOSURE,
    POLICY_VIOLATION,
    CoalescingStream,
    WebSocketTransport,
)
from .ws_args import DEFAULT_MAX_CLOCK_SKEW_SECONDS, FLAGS
from .ws_auth import (
    AuthConfigError,
    Authenticator,
    AuthFailure,
    CapabilityTokenAuth,
    SignedBearerTokenAuth,
    authorize,
)

if TYPE_CHECKING:
    from .app import AppServer

log = logging.getLogger(__name__)

READY_PATH = "/readyz"
HEALTH_PATH = "/healthz"
# h11's own default; a longer head is answered 431.
MAX_REQUEST_HEAD = 16 * 1024
_RECEIVE_CHUNK = 64 * 1024
_MESSAGE_QUEUE = 64


class WebSocketConfigError(ValueError):
    """The listener cannot start with these options; the message says which flag to fix."""


@dataclass(frozen=True)
class WebSocketOptions:
    host: str
    port: int
    # Set for wss://.
    ssl_context: ssl.SSLContext | None = None
    # None: no authentication (allowed on loopback, or with allow_unauthenticated).
    auth: Authenticator | None = None
    allow_unauthenticated: bool = False
    # With its outbound queue full, how long a write to a client may make no progress before the
    # client is disconnected as one that stopped reading. Not 0: a client that reads slower than a
    # burst is produced must keep its connection, and so must one whose network stalls a moment.
    slow_reader_timeout: float = 2.0
    # TLS + HTTP head + websocket handshake must finish within this.
    handshake_timeout: float = 10.0
    # How long the closing handshake may take before the TCP connection is dropped.
    close_timeout: float = 2.0
    # The largest message accepted (a larger one closes the connection with 1009); the protocol
    # promises at least 16 MiB, as on stdio.
    max_message_size: int = DEFAULT_MAX_LINE
    receive_buffer_size: int = _RECEIVE_CHUNK

    @property
    def scheme(self) -> str:
        return "wss" if self.ssl_context is not None else "ws"

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    def check(self) -> None:
        if self.auth is None and not self.is_loopback and not self.allow_unauthenticated:
            raise WebSocketConfigError(
                f"refusing to listen on {self.host} without authentication: anyone who can reach "
                "that address could drive the agent. Pass --ws-auth capability-token or "
                "--ws-auth signed-bearer-token, or --allow-unauthenticated if the network is trusted"
            )


@dataclass(frozen=True)
class BoundAddress:
    """Where the listener accepts connections (the port is the real one when 0 was asked for)."""

    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_listen_url(listen_url: str) -> tuple[str, str, int]:
    """``ws://IP:PORT`` or ``wss://IP:PORT`` -> (scheme, host, port); IPv6 hosts in brackets."""
    expected = "expected ws://IP:PORT or wss://IP:PORT"
    try:
        parts = urlsplit(listen_url)
        port = parts.port
    except ValueError:
        raise WebSocketConfigError(f"invalid --listen URL {listen_url!r}: {expected}") from None
    if parts.scheme not in ("ws", "wss"):
        raise WebSocketConfigError(f"unsupported --listen URL {listen_url!r}: {expected}")
    host = parts.hostname
    if not host or port is None or parts.path not in ("", "/") or parts.query or parts.username:
        raise WebSocketConfigError(f"invalid --listen URL {listen_url!r}: {expected}")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise WebSocketConfigError(
                f"invalid --listen URL {listen_url!r}: the host must be an IP address or localhost"
            ) from None
    return parts.scheme, host, port


def _ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise WebSocketConfigError(
            f"cannot load the TLS certificate {cert} / key {key}: {exc.strerror or exc}"
        ) from None
    return context


def websocket_options_from_args(args: argparse.Namespace, listen_url: str) -> WebSocketOptions:
    """Validate the websocket flags (reading secrets and certificates now) into listener options."""
    scheme, host, port = parse_listen_url(listen_url)
    cert, key = args.tls_cert, args.tls_key
    ssl_context = None
    if scheme == "wss":
        if cert is None or key is None:
            raise WebSocketConfigError("a wss:// listener needs both --tls-cert and --tls-key")
        ssl_context = _ssl_context(cert, key)
    elif cert is not None or key is not None:
        raise WebSocketConfigError("--tls-cert and --tls-key need a wss:// --listen URL")

    mode = args.ws_auth
    jwt_flags = [
        flag
        for attr, flag in FLAGS.items()
        if attr in ("ws_shared_secret_file", "ws_issuer", "ws_audience", "ws_max_clock_skew_seconds")
        and getattr(args, attr) is not None
    ]
    auth: Authenticator | None = None
    try:
        if mode == "capability-token":
            if jwt_flags:
                raise WebSocketConfigError(f"{', '.join(jwt_flags)} need --ws-auth signed-bearer-token")
            if args.ws_token_file is None:
                raise WebSocketConfigError("--ws-auth capability-token needs --ws-token-file")
            auth = CapabilityTokenAuth.from_file(args.ws_token_file)
        elif mode == "signed-bearer-token":
            if args.ws_token_file is not None:
                raise WebSocketConfigError("--ws-token-file needs --ws-auth capability-token")
            if args.ws_shared_secret_file is None:
                raise WebSocketConfigError("--ws-auth signed-bearer-token needs --ws-shared-secret-file")
            skew = args.ws_max_clock_skew_seconds
            auth = SignedBearerTokenAuth.from_file(
                args.ws_shared_secret_file,
                issuer=(args.ws_issuer or "").strip() or None,
                audience=(args.ws_audience or "").strip() or None,
                max_clock_skew_seconds=DEFAULT_MAX_CLOCK_SKEW_SECONDS if skew is None else skew,
            )
        elif args.ws_token_file is not None or jwt_flags:
            given = ["--ws-token-file"] * (args.ws_token_file is not None) + jwt_flags
            raise WebSocketConfigError(
                f"{', '.join(given)} need --ws-auth capability-token or --ws-auth signed-bearer-token"
            )
    except AuthConfigError as exc:
        raise WebSocketConfigError(str(exc)) from None
    if auth is not None and args.allow_unauthenticated:
        raise WebSocketConfigError("--allow-unauthenticated contradicts --ws-auth")
    options = WebSocketOptions(
        host=host,
        port=port,
        ssl_context=ssl_context,
        auth=auth,
        allow_unauthenticated=bool(args.allow_unauthenticated),
    )
    options.check()
    return options


# ---- HTTP in front of the websocket -------------------------------------------------------------


@dataclass(frozen=True)
class _HttpAnswer:
    """A plain HTTP answer: a status and a one-line plain-text body; the connection closes after it."""

    status: int
    body: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


class _BadRequestHead(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def _read_request_head(stream: trio.abc.Stream) -> tuple[h11.Request, bytes] | None:
    """The request head and every byte read so far; None if the client left without a request."""
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
    raw = bytearray()
    while True:
        try:
            event = parser.next_event()
        except h11.RemoteProtocolError as exc:
            raise _BadRequestHead(exc.error_status_hint) from None
        if isinstance(event, h11.Request):
            return event, bytes(raw)
        if event is not h11.NEED_DATA:  # h11.ConnectionClosed: nothing was asked
            return None
        data = bytes(await stream.receive_some(_RECEIVE_CHUNK))
        raw += data
        parser.receive_data(data)  # b"" tells h11 the client is gone


async def _send_http(stream: trio.abc.Stream, answer: _HttpAnswer, *, head_only: bool = False) -> None:
    payload = (answer.body + "\n").encode()
    try:
        phrase = HTTPStatus(answer.status).phrase
    except ValueError:
        phrase = "Error"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
        (b"connection", b"close"),
        *answer.headers,
    ]
    head = f"HTTP/1.1 {answer.status} {phrase}\r\n".encode()
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n"
    await stream.send_all(head if head_only else head + payload)


def _header(request: h11.Request, name: bytes) -> bytes | None:
    values = [value for key, value in request.headers if key == name]
    return b", ".join(values) if values else None


def _tokens(value: bytes | None) -> set[str]:
    if value is None:
        return set()
    return {token.strip().lower() for token in value.decode("latin-1").split(",")}


def _check_upgrade(request: h11.Request) -> _HttpAnswer | None:
    """Refuse an upgrade that trio-websocket would reject, with the right status (RFC 6455 §4.2.1).

    trio-websocket answers these itself but then never reports the request, which would leave the
    connection waiting for the handshake timeout.
    """
    if request.method != b"GET":
        return _HttpAnswer(405, "websocket upgrades must use GET", ((b"allow", b"GET"),))
    if request.http_version != b"1.1":
        return _HttpAnswer(400, "websocket upgrades need HTTP/1.1")
    if (_header(request, b"upgrade") or b"").strip().lower() != b"websocket":
        return _HttpAnswer(400, "unsupported Upgrade")
    if "upgrade" not in _tokens(_header(request, b"connection")):
        return _HttpAnswer(400, "missing Connection: Upgrade")
    if _header(request, b"sec-websocket-version") != b"13":
        return _HttpAnswer(426, "unsupported websocket version", ((b"sec-websocket-version", b"13"),))
    if not _header(request, b"sec-websocket-key"):
        return _HttpAnswer(400, "missing Sec-WebSocket-Key")
    return None


class _ReplayStream(trio.abc.Stream):
    """A stream that first yields bytes already read from it: the HTTP head, for trio-websocket."""

    def __init__(self, stream: trio.abc.Stream, prefix: bytes) -> None:
        self._stream = stream
        self._prefix = memoryview(prefix)

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._prefix:
            await trio.lowlevel.checkpoint()
            size = len(self._prefix) if max_bytes is None else max_bytes
            chunk, self._prefix = self._prefix[:size], self._prefix[size:]
            return bytes(chunk)
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._stream.aclose()


def _peer_name(stream: trio.SocketStream) -> str:
    try:
        host, port, *_ = stream.socket.getpeername()
    except OSError:
        return "unknown"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---- the listener -------------------------------------------------------------------------------


class _Listener:
    """Accepts connections and serves each in a task of its own.

    Shutdown is two-phase. Cancelling ``serve_websocket`` stops accepting and ends every session, but
    the closing handshakes (1001) still need trio-websocket's reader tasks to see the clients' replies,
    so connections run in a shielded scope that ``shutdown`` bounds with a deadline instead.
    """

    def __init__(self, app: AppServer, options: WebSocketOptions) -> None:
        self.app = app
        self.options = options
        self.shutting_down = False
        self._shield = trio.CancelScope(shield=True)
        self._accepting = trio.CancelScope()
        # The part of each connection that a shutdown cancels: everything but its closing handshake.
        self._interruptible: set[trio.CancelScope] = set()

    async def run(
        self, listeners: list[trio.SocketListener], *, task_status: trio.TaskStatus[None]
    ) -> None:
        with self._shield:
            async with trio.open_nursery() as handlers:
                await handlers.start(self._accept, listeners, handlers)
                task_status.started()

    async def _accept(
        self,
        listeners: list[trio.SocketListener],
        handlers: trio.Nursery,
        *,
        task_status: trio.TaskStatus[list[trio.SocketListener]],
    ) -> None:
        with self._accepting:
            await trio.serve_listeners(
                self.handle, listeners, handler_nursery=handlers, task_status=task_status
            )

    def shutdown(self) -> None:
        self.shutting_down = True
        self._accepting.cancel()
        for scope in self._interruptible:
            scope.cancel()
        self._shield.deadline = trio.current_time() + self.options.close_timeout + 1.0

    async def handle(self, tcp: trio.SocketStream) -> None:
        peer = _peer_name(tcp)
        interruptible = trio.CancelScope()
        self._interruptible.add(interruptible)
        if self.shutting_down:
            interruptible.cancel()
        transport = None
        try:
            async with trio.open_nursery() as nursery:  # hosts trio-websocket's reader task
                with interruptible:
                    with trio.move_on_after(self.options.handshake_timeout) as handshake:
                        transport = await self._open(tcp, peer, nursery)
                    if handshake.cancelled_caught:
                        log.info("ws %s: no handshake within %gs", peer, self.options.handshake_timeout)
                    elif transport is not None:
                        await self._serve(transport)
                if transport is not None:
                    await self._close(transport)
                nursery.cancel_scope.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio_websocket.ConnectionClosed) as exc:
            log.debug("ws %s: connection lost (%s)", peer, type(exc).__name__)
        except Exception:
            # One broken connection must never take the listener down.
            log.exception("ws %s: connection failed", peer)
        finally:
            self._interruptible.discard(interruptible)
            await trio.aclose_forcefully(tcp)

    async def _open(
        self, tcp: trio.SocketStream, peer: str, nursery: trio.Nursery
    ) -> WebSocketTransport | None:
        """Run TLS and the HTTP exchange; the open websocket, or None once a plain answer was sent."""
        stream: trio.abc.Stream = tcp
        if self.options.ssl_context is not None:
            tls = trio.SSLStream(tcp, self.options.ssl_context, server_side=True)
            try:
                await tls.do_handshake()
            except trio.BrokenResourceError:
                log.info("ws %s: TLS handshake failed", peer)
                return None
            stream = tls
        try:
            head = await _read_request_head(stream)
        except _BadRequestHead as bad:
            await _send_http(stream, _HttpAnswer(bad.status, "bad request"))
            await stream.aclose()
            return None
        if head is None:
            return None
        request, raw = head
        answer = self._route(request, peer)
        if answer is not None:
            await _send_http(stream, answer, head_only=request.method == b"HEAD")
            await stream.aclose()  # for wss, with a close_notify: the answer was complete
            return None
        coalescing = CoalescingStream(stream)
        ws_request = await trio_websocket.wrap_server_stream(
            nursery,
            _ReplayStream(coalescing, raw),
            # Room for the messages of one received chunk, so trio-websocket's reader does not wait
            # for the session after each of them.
            message_queue_size=_MESSAGE_QUEUE,
            max_message_size=self.options.max_message_size,
            receive_buffer_size=self.options.receive_buffer_size,
        )
        ws = await ws_request.accept()
        return WebSocketTransport(ws, name=f"ws:{peer}", stream=coalescing)

    def _route(self, request: h11.Request, peer: str) -> _HttpAnswer | None:
        """What to answer over plain HTTP, or None if the request may become a websocket."""
        if _header(request, b"origin") is not None:
            # Browsers send Origin on websockets and cross-site requests; CLI and IDE clients do not.
            # Refusing it outright keeps web pages from driving a local agent.
            log.info("ws %s: refused a request with an Origin header", peer)
            return _HttpAnswer(403, "requests with an Origin header are not allowed")
        if "websocket" not in _tokens(_header(request, b"upgrade")):
            path = request.target.decode("latin-1").split("?", 1)[0]
            if path not in (READY_PATH, HEALTH_PATH):
                return _HttpAnswer(404, "not found")
            if request.method not in (b"GET", b"HEAD"):
                return _HttpAnswer(405, "method not allowed", ((b"allow", b"GET, HEAD"),))
            # Connections are only handled while the listener accepts, so both probes hold here.
            return _HttpAnswer(200, "ok")
        refused = _check_upgrade(request)
        if refused is not None:
            return refused
        try:
            authorize(list(request.headers), self.options.auth)
        except AuthFailure as failure:
            log.info("ws %s: refused websocket: %s", peer, failure.reason)
            return _HttpAnswer(401, failure.reason, ((b"www-authenticate", b'Bearer realm="codex-trio"'),))
        return None

    async def _serve(self, transport: WebSocketTransport) -> None:
        name = transport.name
        log.info("%s: connected", name)
        async with trio.open_nursery() as nursery:
            limits = replace(self.app.options.limits, slow_reader_timeout=self.options.slow_reader_timeout)
            # A slow_reader_timeout makes the session drop a client that stops reading rather than
            # let it hold up the others (stdio, with one client, never sets it).
            await nursery.start(
                partial(self.app.serve_transport, transport, name=name, limits=limits)
            )

    async def _close(self, transport: WebSocketTransport) -> None:
        if self.shutting_down:
            code, reason = GOING_AWAY, "server shutting down"
        elif transport.peer_closed:
            code, reason = NORMAL_CLOSURE, None
        else:
            # The session ended on its own with the client still there: it stopped reading.
            code, reason = POLICY_VIOLATION, "client stopped reading"
        with trio.move_on_after(self.options.close_timeout):
            await transport.aclose(code, reason)
        if transport.peer_closed:
            log.info("%s: disconnected by the client (%s)", transport.name, transport.close_code)
        elif transport.cut_short:
            log.info("%s: dropped without a close frame (%s)", transport.name, reason)
        else:
            log.info("%s: disconnected (%d %s)", transport.name, code, reason)


async def serve_websocket(
    app: AppServer,
    options: WebSocketOptions,
    *,
    task_status: trio.TaskStatus[BoundAddress] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve websocket clients until cancelled; reports the bound address once accepting."""
    options.check()
    listeners = await trio.open_tcp_listeners(options.port, host=options.host)
    sockname = listeners[0].socket.getsockname()
    bound = BoundAddress(options.scheme, sockname[0], sockname[1])
    listener = _Listener(app, options)
    async with trio.open_nursery() as nursery:
        try:
            await nursery.start(listener.run, listeners)
        except BaseException:
            listener.shutdown()
            raise
        if options.auth is None and not options.is_loopback:
            # Said on stderr whatever the log level: this listener lets anyone on the network in.
            print(
                f"codex-trio: WARNING: {bound.url} accepts websocket clients WITHOUT authentication "
                "(--allow-unauthenticated); anyone who can reach it can drive the agent",
                file=sys.stderr,
                flush=True,
            )
        auth = options.auth.mode if options.auth is not None else "none"
        log.info("listening on %s (auth: %s)", bound.url, auth)
        task_status.started(bound)
        try:
            await trio.sleep_forever()
        finally:
            listener.shutdown()
