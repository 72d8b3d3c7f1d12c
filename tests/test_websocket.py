"""The websocket listener end to end: real sockets on 127.0.0.1, trio-websocket as the client."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
import trio
import trio_websocket
import trustme

from codex_trio.app import AppServer, ServerOptions
from codex_trio.rpc.session import Limits
from codex_trio.ws_args import add_websocket_arguments, websocket_flags_used
from codex_trio.ws_auth import CapabilityTokenAuth, SignedBearerTokenAuth
from codex_trio.ws_server import (
    BoundAddress,
    WebSocketConfigError,
    WebSocketOptions,
    serve_websocket,
    websocket_options_from_args,
)

SECRET = b"0123456789abcdef0123456789abcdef-shared"
TOKEN = "capability-token-7f3a9c"


def make_app(limits: Limits | None = None) -> AppServer:
    return AppServer(ServerOptions(env=dict(os.environ), limits=limits or Limits()))


async def start(nursery: trio.Nursery, app: AppServer | None = None, **options: Any) -> BoundAddress:
    opts = WebSocketOptions(host="127.0.0.1", port=0, **options)
    bound: BoundAddress = await nursery.start(serve_websocket, app or make_app(), opts)
    return bound


class Client:
    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws

    async def send(self, obj: Any) -> None:
        await self.ws.send_message(json.dumps(obj))

    async def receive(self, timeout: float = 5) -> Any:
        with trio.fail_after(timeout):
            return json.loads(await self.ws.get_message())

    async def call(self, request_id: Any, method: str, params: Any = None, timeout: float = 5) -> Any:
        msg: dict[str, Any] = {"id": request_id, "method": method}
        if params is not None:
            msg["params"] = params
        await self.send(msg)
        return await self.receive(timeout)

    async def initialize(self, name: str = "ws_test", version: str = "1.0.0") -> Any:
        info = {"name": name, "title": None, "version": version}
        return await self.call("init", "initialize", {"clientInfo": info, "capabilities": None})


@asynccontextmanager
async def connect(
    bound: BoundAddress,
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[Client]:
    async with trio_websocket.open_websocket_url(
        bound.url + "/",
        ssl_context=ssl_context,
        extra_headers=list(headers),
        max_message_size=64 * 1024 * 1024,
        connect_timeout=5,
        disconnect_timeout=5,
    ) as ws:
        yield Client(ws)


async def rejected(bound: BoundAddress, headers: Sequence[tuple[bytes, bytes]] = ()) -> tuple[int, bytes]:
    with pytest.raises(trio_websocket.ConnectionRejected) as info:
        async with connect(bound, headers=headers):
            pass
    return info.value.status_code, info.value.body or b""


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"Authorization", f"Bearer {token}".encode())]


async def http(
    bound: BoundAddress, request: bytes, *, ssl_context: ssl.SSLContext | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP exchange; the server closes after answering."""
    with trio.fail_after(5):
        stream: trio.abc.Stream
        if ssl_context is not None:
            stream = await trio.open_ssl_over_tcp_stream(bound.host, bound.port, ssl_context=ssl_context)
        else:
            stream = await trio.open_tcp_stream(bound.host, bound.port)
        async with stream:
            await stream.send_all(request)
            data = b""
            while chunk := await stream.receive_some():
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def get(path: str, *extra: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *extra, "", ""]
    return "\r\n".join(lines).encode()


# ---- plain HTTP on the websocket port ------------------------------------------------------------


async def test_probes_answer_200_and_other_paths_404(nursery: trio.Nursery, tmp_path: Path) -> None:
    # Probes need no token, even when websockets do.
    (tmp_path / "token").write_text(TOKEN)
    bound = await start(nursery, auth=CapabilityTokenAuth.from_file(tmp_path / "token"))
    for path in ("/readyz", "/healthz", "/healthz?verbose=1"):
        status, headers, body = await http(bound, get(path))
        assert (status, body) == (200, b"ok\n")
        assert headers["content-type"].startswith("text/plain")
    status, headers, body = await http(bound, get("/readyz").replace(b"GET", b"HEAD", 1))
    assert (status, headers["content-length"], body) == (200, "3", b"")
    assert (await http(bound, get("/")))[0] == 404
    assert (await http(bound, get("/other")))[0] == 404
    status, headers, _ = await http(bound, get("/healthz").replace(b"GET", b"POST", 1))
    assert (status, headers["allow"]) == (405, "GET, HEAD")
    assert (await http(bound, b"NOT HTTP AT ALL\r\n\r\n"))[0] == 400


async def test_any_request_with_an_origin_header_is_refused(nursery: trio.Nursery) -> None:
    bound = await start(nursery)
    status, _, body = await http(bound, get("/healthz", "Origin: http://localhost:3000"))
    assert (status, body) == (403, b"requests with an Origin header are not allowed\n")
    assert (await http(bound, get("/nowhere", "Origin: null")))[0] == 403
    assert await rejected(bound, [(b"Origin", b"https://evil.example")]) == (
        403,
        b"requests with an Origin header are not allowed\n",
    )
    # Without it, the same server accepts websockets.
    async with connect(bound) as client:
        assert "userAgent" in (await client.initialize())["result"]


async def test_bad_upgrade_requests_get_an_http_error_at_once(nursery: trio.Nursery) -> None:
    bound = await start(nursery)
    upgrade = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]
    status, headers, _ = await http(bound, get("/", *upgrade, "Sec-WebSocket-Version: 8"))
    assert (status, headers["sec-websocket-version"]) == (426, "13")
    assert (await http(bound, get("/", *upgrade[:2], "Sec-WebSocket-Version: 13")))[0] == 400
    assert (await http(bound, get("/", upgrade[0], upgrade[2], "Sec-WebSocket-Version: 13")))[0] == 400
    version = "Sec-WebSocket-Version: 13"
    assert (await http(bound, get("/", "Upgrade: websocket, h2c", *upgrade[1:], version)))[0] == 400
    http10 = get("/", *upgrade, version).replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    assert (await http(bound, http10))[0] == 400
    status, headers, _ = await http(bound, get("/", *upgrade, version).replace(b"GET", b"PUT", 1))
    assert (status, headers["allow"]) == (405, "GET")


async def test_a_client_that_never_finishes_its_request_is_dropped(nursery: trio.Nursery) -> None:
    bound = await start(nursery, handshake_timeout=0.2)
    stream = await trio.open_tcp_stream(bound.host, bound.port)
    await stream.send_all(b"GET /healthz HTTP/1.1\r\n")
    with trio.fail_after(3):
        assert await stream.receive_some() == b""


# ---- authentication -----------------------------------------------------------------------------


async def test_capability_token(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    # Whitespace around the token in the file does not count.
    (tmp_path / "token").write_text(f"  {TOKEN}\n")
    bound = await start(nursery, auth=CapabilityTokenAuth.from_file(tmp_path / "token"))
    async with connect(bound, headers=bearer(TOKEN)) as client:
        assert "userAgent" in (await client.initialize())["result"]
    assert await rejected(bound, bearer(TOKEN + "x")) == (401, b"invalid token\n")
    assert await rejected(bound, bearer(TOKEN[:-1])) == (401, b"invalid token\n")
    assert await rejected(bound) == (401, b"missing bearer token\n")
    assert await rejected(bound, [(b"Authorization", f"Basic {TOKEN}".encode())]) == (
        401,
        b"invalid authorization header\n",
    )
    status, headers, _ = await http(
        bound,
        get(
            "/",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        ),
    )
    assert (status, headers["www-authenticate"]) == (401, 'Bearer realm="codex-trio"')
    assert TOKEN not in caplog.text
    assert "invalid token" in caplog.text


def jwt_token(secret: bytes = SECRET, **claims: Any) -> str:
    payload = {"exp": int(time.time()) + 300, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret, algorithm="HS256")


async def test_signed_bearer_token(nursery: trio.Nursery, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    auth = SignedBearerTokenAuth(SECRET, issuer="codex-host", audience="codex-app-server")
    bound = await start(nursery, auth=auth)
    claims = {"iss": "codex-host", "aud": "codex-app-server"}
    good = jwt_token(**claims)
    async with connect(bound, headers=bearer(good)) as client:
        assert "userAgent" in (await client.initialize())["result"]
    now = int(time.time())
    # Within the default 30 s clock skew an expired token still passes; beyond it, not.
    async with connect(bound, headers=bearer(jwt_token(**claims, exp=now - 10))) as client:
        assert "result" in await client.initialize()
    cases = {
        jwt_token(**claims, exp=now - 60): b"expired token\n",
        jwt_token(b"another-secret-another-secret-0000", **claims): b"invalid token\n",
        jwt_token(**claims, exp=None): b"token has no exp claim\n",
        jwt_token(iss="someone-else", aud="codex-app-server"): b"issuer mismatch\n",
        jwt_token(aud="codex-app-server"): b"issuer mismatch\n",
        jwt_token(iss="codex-host", aud="other"): b"audience mismatch\n",
        jwt_token(**claims, nbf=now + 120): b"token not valid yet\n",
        "not-a-jwt": b"invalid token\n",
        jwt.encode({"exp": now + 60, **claims}, None, algorithm="none"): b"invalid token\n",
    }
    for token, reason in cases.items():
        assert await rejected(bound, bearer(token)) == (401, reason), reason
        assert token not in caplog.text
    assert await rejected(bound) == (401, b"missing bearer token\n")
    assert good not in caplog.text


async def test_signed_bearer_token_without_issuer_or_audience_configured(nursery: trio.Nursery) -> None:
    bound = await start(nursery, auth=SignedBearerTokenAuth(SECRET, max_clock_skew_seconds=0))
    async with connect(bound, headers=bearer(jwt_token(iss="any", aud="any"))) as client:
        assert "result" in await client.initialize()
    expired = jwt_token(exp=int(time.time()) - 5)
    assert await rejected(bound, bearer(expired)) == (401, b"expired token\n")


# ---- command-line options -----------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_websocket_arguments(parser)
    return parser.parse_args(argv)


def test_options_from_flags(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    opts = websocket_options_from_args(parse(), "ws://127.0.0.1:4500")
    assert (opts.scheme, opts.host, opts.port, opts.auth) == ("ws", "127.0.0.1", 4500, None)
    opts = websocket_options_from_args(
        parse("--ws-auth", "capability-token", "--ws-token-file", str(token_file)), "ws://0.0.0.0:0"
    )
    assert opts.auth is not None and opts.auth.mode == "capability-token"
    assert TOKEN not in repr(opts)
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(SECRET)
    args = parse(
        "--ws-auth", "signed-bearer-token", "--ws-shared-secret-file", str(secret_file),
        "--ws-issuer", "me", "--ws-max-clock-skew-seconds", "5",
    )  # fmt: skip
    opts = websocket_options_from_args(args, "ws://[::1]:4500")
    assert isinstance(opts.auth, SignedBearerTokenAuth)
    assert (opts.auth.issuer, opts.auth.audience, opts.auth.max_clock_skew_seconds) == ("me", None, 5)
    assert SECRET.decode() not in repr(opts)
    assert websocket_flags_used(args) == [
        "--ws-auth",
        "--ws-shared-secret-file",
        "--ws-issuer",
        "--ws-max-clock-skew-seconds",
    ]
    assert websocket_flags_used(parse()) == []


@pytest.mark.parametrize(
    ("argv", "url", "message"),
    [
        ((), "ws://0.0.0.0:4500", "refusing to listen on 0.0.0.0 without authentication"),
        ((), "ws://192.168.1.10:4500", "--allow-unauthenticated"),
        ((), "wss://127.0.0.1:4500", "needs both --tls-cert and --tls-key"),
        (("--tls-cert", "/x.pem", "--tls-key", "/x.pem"), "ws://127.0.0.1:1", "need a wss://"),
        ((), "ws://example.com:4500", "must be an IP address"),
        ((), "ws://127.0.0.1", "expected ws://IP:PORT"),
        ((), "http://127.0.0.1:80", "unsupported --listen URL"),
        (("--ws-auth", "capability-token"), "ws://127.0.0.1:1", "needs --ws-token-file"),
        (("--ws-auth", "capability-token", "--ws-token-file", "/nonexistent/token"), "ws://127.0.0.1:1",
         "cannot read the websocket token file /nonexistent/token"),
        (("--ws-auth", "signed-bearer-token"), "ws://127.0.0.1:1", "needs --ws-shared-secret-file"),
        (("--ws-issuer", "x"), "ws://127.0.0.1:1", "--ws-issuer need --ws-auth"),
        (("--ws-token-file", "/t"), "ws://127.0.0.1:1", "--ws-token-file need --ws-auth"),
    ],
)  # fmt: skip
def test_bad_flag_combinations_are_refused_at_start_up(
    argv: tuple[str, ...], url: str, message: str
) -> None:
    with pytest.raises(WebSocketConfigError, match=message.replace("?", r"\?").replace(".", r"\.")):
        websocket_options_from_args(parse(*argv), url)


def test_short_or_empty_secrets_are_refused_at_start_up(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"  " + b"s" * 31 + b"\n")
    args = parse("--ws-auth", "signed-bearer-token", "--ws-shared-secret-file", str(short))
    with pytest.raises(WebSocketConfigError, match="at least 32 bytes") as info:
        websocket_options_from_args(args, "ws://127.0.0.1:0")
    assert "sss" not in str(info.value)
    empty = tmp_path / "empty"
    empty.write_text(" \n")
    args = parse("--ws-auth", "capability-token", "--ws-token-file", str(empty))
    with pytest.raises(WebSocketConfigError, match="is empty"):
        websocket_options_from_args(args, "ws://127.0.0.1:0")


async def test_unauthenticated_non_loopback_listener(capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app()
    with pytest.raises(WebSocketConfigError, match="without authentication"):
        await serve_websocket(app, WebSocketOptions(host="0.0.0.0", port=0))
    args = parse("--allow-unauthenticated")
    options = websocket_options_from_args(args, "ws://0.0.0.0:0")
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(serve_websocket, app, options)
        nursery.cancel_scope.cancel()
    err = capsys.readouterr().err
    assert f"ws://0.0.0.0:{bound.port} accepts websocket clients WITHOUT authentication" in err


# ---- wss ----------------------------------------------------------------------------------------


async def test_wss_with_a_certificate(nursery: trio.Nursery, tmp_path: Path) -> None:
    ca = trustme.CA()
    pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    args = parse(
        "--tls-cert", str(pem), "--tls-key", str(pem),
        "--ws-auth", "capability-token", "--ws-token-file", str(token_file),
    )  # fmt: skip
    options = websocket_options_from_args(args, "wss://127.0.0.1:0")
    bound: BoundAddress = await nursery.start(serve_websocket, make_app(), options)
    assert bound.url.startswith("wss://127.0.0.1:")
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with connect(bound, headers=bearer(TOKEN), ssl_context=client_ctx) as client:
        assert "userAgent" in (await client.initialize())["result"]
        assert "userAgent" in (await client.call(2, "getUserAgent"))["result"]
    assert (await http(bound, get("/readyz"), ssl_context=client_ctx))[0] == 200
    with pytest.raises(trio_websocket.ConnectionRejected) as info:
        async with connect(bound, ssl_context=client_ctx):
            pass
    assert info.value.status_code == 401
    # A client that does not trust the certificate gets nowhere; the server goes on.
    untrusting = await trio.open_ssl_over_tcp_stream(
        bound.host, bound.port, ssl_context=ssl.create_default_context()
    )
    with pytest.raises(trio.BrokenResourceError), trio.fail_after(5):
        await untrusting.do_handshake()
    # A plain-text client on the TLS port is dropped without an answer.
    stream = await trio.open_tcp_stream(bound.host, bound.port)
    await stream.send_all(get("/healthz"))
    with trio.fail_after(5):
        assert await stream.receive_some() == b""
    async with connect(bound, headers=bearer(TOKEN), ssl_context=client_ctx) as client:
        assert "result" in await client.initialize()


# ---- sessions -----------------------------------------------------------------------------------


async def test_concurrent_clients_each_have_their_own_session(nursery: trio.Nursery) -> None:
    app = make_app()
    bound = await start(nursery, app)
    results: dict[int, list[Any]] = {}

    async def one_client(i: int) -> None:
        async with connect(bound) as client:
            seen = [await client.call(1, "getUserAgent")]
            seen.append(await client.initialize(name=f"client_{i}", version=f"{i}.0"))
            seen.append(await client.initialize(name="again"))
            seen.append(await client.call(2, "getUserAgent"))
            results[i] = seen

    async with trio.open_nursery() as inner:
        for i in range(6):
            inner.start_soon(one_client, i)
    for i, (before, init, again, after) in results.items():
        assert before == {"error": {"code": -32600, "message": "Not initialized"}, "id": 1}
        assert init["result"]["userAgent"].endswith(f"(client_{i}; {i}.0)")
        assert again == {"error": {"code": -32600, "message": "Already initialized"}, "id": "init"}
        assert after == {"id": 2, "result": {"userAgent": init["result"]["userAgent"]}}
    assert len(results) == 6
    with trio.fail_after(5):
        while app.sessions:
            await trio.sleep(0.01)


async def test_pipelined_requests_are_answered_in_order(nursery: trio.Nursery) -> None:
    bound = await start(nursery)
    async with connect(bound) as client:
        await client.initialize()
        for i in range(2000):
            await client.send({"id": i, "method": "getUserAgent"})
        ids = [(await client.receive())["id"] for _ in range(2000)]
    assert ids == list(range(2000))


async def test_garbage_frames_are_ignored(nursery: trio.Nursery, caplog: pytest.LogCaptureFixture) -> None:
    bound = await start(nursery)
    async with connect(bound) as client:
        await client.ws.send_message(b'{"id": 1, "method": "getUserAgent"}')  # binary: not a message
        for junk in ("{not json", "[1,2]", '"str"', '{"id": 77}', "", " "):
            await client.ws.send_message(junk)
        reply = await client.initialize()
        assert reply["id"] == "init"
        assert "userAgent" in reply["result"]
    assert "ignoring a binary websocket frame of 35 bytes" in caplog.text


async def test_a_16_mib_frame_is_accepted(nursery: trio.Nursery) -> None:
    bound = await start(nursery)
    async with connect(bound) as client:
        await client.initialize()
        padding = "x" * (16 * 1024 * 1024 + 10)
        # (A method whose params ignore unknown fields: getUserAgent takes no params at all.)
        reply = await client.call(2, "thread/loaded/list", {"padding": padding}, timeout=15)
        assert reply["result"]["data"] == []


async def test_a_frame_over_the_limit_closes_that_connection_only(nursery: trio.Nursery) -> None:
    bound = await start(nursery, max_message_size=1024 * 1024)
    async with connect(bound) as other, connect(bound) as client:
        await client.initialize()
        await client.ws.send_message("x" * (1024 * 1024 + 1))
        with pytest.raises(trio_websocket.ConnectionClosed) as info:
            await client.receive()
        assert info.value.reason is not None and info.value.reason.code == 1009
        assert "result" in await other.initialize()


def _masked_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    mask = b"\x01\x02\x03\x04"
    header = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    else:
        header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def raw_websocket(bound: BoundAddress) -> trio.SocketStream:
    stream = await trio.open_tcp_stream(bound.host, bound.port)
    await stream.send_all(
        get(
            "/",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        )
    )
    data = b""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some()
    assert data.startswith(b"HTTP/1.1 101 ")
    return stream


async def test_invalid_utf8_in_a_text_frame_fails_that_connection(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    # RFC 6455 §8.1 requires failing the connection (wsproto does); a binary frame is merely skipped.
    caplog.set_level(logging.INFO)
    bound = await start(nursery)
    stream = await raw_websocket(bound)
    await stream.send_all(_masked_frame(0x1, b'{"id":1,"method":"\xff\xfe"}'))
    data = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some():
            data += chunk
    # No answer: at most a close frame, then the end of the TCP connection.
    assert data == b"" or data[0] == 0x88
    assert "websocket closed: 1007 INVALID_FRAME_PAYLOAD_DATA" in caplog.text
    async with connect(bound) as client:
        assert "result" in await client.initialize()


async def test_closing_mid_request_leaves_the_others_served(nursery: trio.Nursery) -> None:
    app = make_app()
    bound = await start(nursery, app)
    async with connect(bound) as survivor:
        await survivor.initialize()
        # A client that pipelines requests and leaves without reading the answers...
        async with connect(bound) as leaver:
            await leaver.initialize()
            for i in range(200):
                await leaver.send({"id": i, "method": "getUserAgent"})
        # ...one that drops the TCP connection in the middle of a frame...
        stream = await raw_websocket(bound)
        await stream.send_all(_masked_frame(0x1, b'{"id": 1, "method": "getUserAgent"}')[:12])
        await trio.aclose_forcefully(stream)
        # ...and one that never completes its handshake.
        half = await trio.open_tcp_stream(bound.host, bound.port)
        await half.send_all(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n")
        await trio.aclose_forcefully(half)
        for i in range(5):
            assert (await survivor.call(i, "getUserAgent"))["id"] == i
        with trio.fail_after(5):
            while len(app.sessions) > 1:
                await trio.sleep(0.01)


async def test_a_slow_reader_is_disconnected_and_a_fast_client_keeps_its_latency(
    nursery: trio.Nursery,
) -> None:
    app = make_app(Limits(outbound_queue=16))
    bound = await start(nursery, app, slow_reader_timeout=0.2, close_timeout=0.2)
    big_version = "v" * 65536  # every getUserAgent answer carries it: 64 KiB per reply

    # A small receive buffer on the slow client, so that the kernel does not absorb megabytes for it.
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    await sock.connect((bound.host, bound.port))
    async with trio.open_nursery() as client_nursery:
        ws = await trio_websocket.wrap_client_stream(
            client_nursery, trio.SocketStream(sock), bound.host, "/", max_message_size=2**24
        )
        slow = Client(ws)
        await slow.initialize(version=big_version)
        async with connect(bound) as fast:
            await fast.initialize()
            assert len(app.sessions) == 2
            requests = 400
            for i in range(requests):
                await slow.send({"id": i, "method": "getUserAgent"})
            # The slow client reads nothing now; the fast one keeps asking.
            latencies = []
            with trio.fail_after(10):
                while len(app.sessions) > 1:
                    started = time.perf_counter()
                    assert "result" in await fast.call(len(latencies), "getUserAgent")
                    latencies.append(time.perf_counter() - started)
            for _ in range(20):
                started = time.perf_counter()
                assert "result" in await fast.call("after", "getUserAgent")
                latencies.append(time.perf_counter() - started)
            assert max(latencies) < 0.5, max(latencies)
        # The slow client gets what had reached its socket, then the end of the connection.
        replies = 0
        with pytest.raises(trio_websocket.ConnectionClosed), trio.fail_after(10):
            while True:
                reply = await slow.receive()
                assert reply["result"]["userAgent"].endswith(big_version + ")")
                replies += 1
        assert replies < requests
        client_nursery.cancel_scope.cancel()


async def test_server_shutdown_closes_clients_with_going_away() -> None:
    async with trio.open_nursery() as outer:
        server_scope = trio.CancelScope()

        async def run_server(task_status: trio.TaskStatus[BoundAddress]) -> None:
            with server_scope:
                await serve_websocket(
                    make_app(), WebSocketOptions(host="127.0.0.1", port=0), task_status=task_status
                )

        bound = await outer.start(run_server)
        async with connect(bound) as client:
            await client.initialize()
            server_scope.cancel()
            with pytest.raises(trio_websocket.ConnectionClosed) as info:
                await client.receive()
            assert info.value.reason is not None and info.value.reason.code == 1001
