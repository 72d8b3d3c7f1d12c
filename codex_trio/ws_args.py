"""The websocket listener's command-line flags, apart from the listener (``ws_server``).

Every start parses the command line; only ``--listen ws://`` needs the listener, its h11/trio-websocket
stack and the authenticators. Keeping the flags here lets a stdio server start without importing any
of that (``tests/test_cli.py`` guards it).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal

AuthMode = Literal["capability-token", "signed-bearer-token"]
AUTH_MODES: tuple[AuthMode, ...] = ("capability-token", "signed-bearer-token")
DEFAULT_MAX_CLOCK_SKEW_SECONDS = 30


def add_websocket_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the websocket listener, in a group of their own."""
    group = parser.add_argument_group(
        "websocket listener",
        "Used with --listen ws://IP:PORT or wss://IP:PORT. Each websocket text frame carries one JSON-RPC "
        "message. The same port answers GET /readyz and GET /healthz; requests with an Origin header are "
        "refused (403). Clients authenticate with an 'Authorization: Bearer <token>' header.",
    )
    group.add_argument("--tls-cert", metavar="PATH", type=Path, help="certificate chain (PEM) for wss://")
    group.add_argument("--tls-key", metavar="PATH", type=Path, help="private key (PEM) for wss://")
    group.add_argument(
        "--ws-auth",
        choices=AUTH_MODES,
        help=(
            "how websocket clients authenticate: capability-token (the bearer token must equal the "
            "content of --ws-token-file) or signed-bearer-token (an HS256 JWT with an exp claim, signed "
            "with the secret in --ws-shared-secret-file)"
        ),
    )
    group.add_argument(
        "--ws-token-file",
        metavar="PATH",
        type=Path,
        help="file holding the capability token (surrounding whitespace ignored)",
    )
    group.add_argument(
        "--ws-shared-secret-file",
        metavar="PATH",
        type=Path,
        help="file holding the JWT signing secret, at least 32 bytes (surrounding whitespace ignored)",
    )
    group.add_argument("--ws-issuer", metavar="ISSUER", help="required iss claim of signed tokens")
    group.add_argument("--ws-audience", metavar="AUDIENCE", help="required aud claim of signed tokens")
    group.add_argument(
        "--ws-max-clock-skew-seconds",
        metavar="SECONDS",
        type=float,
        help=f"tolerance when checking exp/nbf of signed tokens (default {DEFAULT_MAX_CLOCK_SKEW_SECONDS})",
    )
    group.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="allow a listener on a non-loopback address without --ws-auth (trusted networks only)",
    )


FLAGS = {
    "tls_cert": "--tls-cert",
    "tls_key": "--tls-key",
    "ws_auth": "--ws-auth",
    "ws_token_file": "--ws-token-file",
    "ws_shared_secret_file": "--ws-shared-secret-file",
    "ws_issuer": "--ws-issuer",
    "ws_audience": "--ws-audience",
    "ws_max_clock_skew_seconds": "--ws-max-clock-skew-seconds",
    "allow_unauthenticated": "--allow-unauthenticated",
}


def websocket_flags_used(args: argparse.Namespace) -> list[str]:
    """The websocket flags given on the command line (to refuse them with --listen stdio://)."""
    return [flag for attr, flag in FLAGS.items() if getattr(args, attr, None) not in (None, False)]
