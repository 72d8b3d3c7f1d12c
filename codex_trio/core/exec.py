"""Running one command for the agent or a client: process, output streaming, timeout, sandbox; and how
its result is shown to the model.

``run_exec`` starts the command in its own process group (stdin /dev/null), streams its stdout and
stderr to a sink as they arrive, and on timeout or cancellation kills the whole group, so nothing it
started outlives it. Limits are the reference's: at most 10,000 streamed chunks per stream, 1 MiB
kept per stream and for the aggregated output, 10 s when no timeout is given, and 2 s for the pipes
to drain once the process is gone (a background child may hold them open).

The formatting half turns a result into what the reference sends back upstream: the ``shell`` tool's
JSON (``{"output":…,"metadata":{"exit_code":…,"duration_seconds":…}}``), the freeform text
(``Exit code: …\\nWall time: … seconds\\nOutput:\\n…``), both truncated head + tail to the model's
budget, and the conversion of the first into the second for models that take freeform output.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import struct
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import trio

from . import safety
from .sandbox import NETWORK_DISABLED_ENV, SandboxSpec, bwrap_path, network_seccomp_program, wrap_argv

StreamName = Literal["stdout", "stderr"]
OutputSink = Callable[[StreamName, bytes], Awaitable[None]]

DEFAULT_TIMEOUT_MS = 10_000
# Per stream: further chunks are still collected, just not streamed.
MAX_OUTPUT_DELTAS_PER_STREAM = 10_000
# Kept per stream, and for the aggregated output.
OUTPUT_MAX_BYTES = 1024 * 1024
IO_DRAIN_SECONDS = 2.0
# How long a SIGKILLed command gets to be reaped before we stop waiting for it.
KILL_WAIT_SECONDS = 5.0
TIMEOUT_EXIT_CODE = 124
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ExecRequest:
    argv: Sequence[str]
    cwd: Path
    # None: the reference's default for the shell tool (DEFAULT_TIMEOUT_MS).
    timeout_ms: int | None = None
    # None: this process's environment. See exec_env for the shell_environment_policy.
    env: Mapping[str, str] | None = None
    # None: run unsandboxed.
    sandbox: SandboxSpec | None = None


@dataclass
class ExecResult:
    # 124 after a timeout, like the reference; -1 when killed by a signal (see ``signal``).
    exit_code: int
    stdout: bytes
    stderr: bytes
    # stdout then stderr (not interleaved), like the reference; capped at OUTPUT_MAX_BYTES.
    aggregated_output: bytes
    duration: float  # seconds
    timed_out: bool
    # The reference's guess that a sandboxed command failed because of the sandbox (used to offer
    # an unsandboxed rerun under on-failure).
    sandbox_denied: bool
    # The signal that killed the command (not after a timeout). The reference reports such a run as
    # an error rather than an output: see format_signal_error.
    signal: int | None = None

    @property
    def stdout_text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")

    @property
    def aggregated_text(self) -> str:
        """The output as the client's ``commandExecution`` item shows it."""
        return self.aggregated_output.decode("utf-8", errors="replace")

    @property
    def duration_ms(self) -> int:
        return int(self.duration * 1000)


class ExecError(Exception):
    """The command could not be started. ``str()`` is the message as the reference displays it
    (``No such file or directory (os error 2)``); ``model_text`` what the model is told."""

    def __init__(self, message: str, debug: str) -> None:
        super().__init__(message)
        self.message = message
        # The reference's Debug rendering of the error, which it puts in the model's output.
        self.debug = debug

    @property
    def model_text(self) -> str:
        return f"execution error: {self.debug}"

    @classmethod
    def from_os_error(cls, exc: OSError) -> ExecError:
        code = exc.errno if exc.errno is not None else 0
        text = os.strerror(code) if code else str(exc)
        kind = _IO_ERROR_KINDS.get(code, "Uncategorized")
        return cls(
            f"{text} (os error {code})",
            f"Io(Os {{ code: {code}, kind: {kind}, message: {_rust_str(text)} }})",
        )

    @classmethod
    def invalid_input(cls, text: str) -> ExecError:
        return cls(text, f"Io(Custom {{ kind: InvalidInput, error: {_rust_str(text)} }})")


class SandboxUnavailableError(ExecError):
    """The command asked for a sandbox this machine cannot provide: it is not run at all."""

    def __init__(self) -> None:
        text = "the sandbox needs bubblewrap (bwrap), which is not installed; the command was not run"
        super().__init__(text, f"SandboxUnavailable({_rust_str(text)})")


_IO_ERROR_KINDS = {
    1: "PermissionDenied",
    2: "NotFound",
    7: "ArgumentListTooLong",
    12: "OutOfMemory",
    13: "PermissionDenied",
    20: "NotADirectory",
    21: "IsADirectory",
    26: "ExecutableFileBusy",
    36: "InvalidFilename",
    40: "FilesystemLoop",
}


def _rust_str(text: str) -> str:
    """A string as Rust's Debug shows it (quoted, escaped)."""
    return json.dumps(text, ensure_ascii=False)


def format_signal_error(sig: int) -> str:
    """What the reference sends the model when the command was killed by a signal."""
    return f"execution error: Sandbox(Signal({sig}))"


# --- environment -------------------------------------------------------------------------------

_CORE_ENV_VARS = ("HOME", "LOGNAME", "PATH", "SHELL", "USER", "USERNAME", "TMPDIR", "TEMP", "TMP")
_DEFAULT_EXCLUDES = ("*KEY*", "*SECRET*", "*TOKEN*")


def _env_pattern(pattern: str) -> re.Pattern[str]:
    # Glob with * and ?, matched case-insensitively, like the reference's patterns.
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL)


def _matches_any(name: str, patterns: Sequence[str]) -> bool:
    return any(_env_pattern(p).fullmatch(name) for p in patterns)


def exec_env(base: Mapping[str, str], policy: Mapping[str, Any] | None = None) -> dict[str, str]:
    """A command's environment from the server's, per ``[shell_environment_policy]`` (``inherit``
    all/core/none, ``ignore_default_excludes`` (true unless set: the reference passes secrets through
    by default), ``exclude``, ``set``, ``include_only``)."""
    policy = policy or {}
    inherit = policy.get("inherit") or "all"
    if inherit == "all":
        env = dict(base)
    elif inherit == "core":
        env = {k: base[k] for k in _CORE_ENV_VARS if k in base}
    else:
        env = {}
    if policy.get("ignore_default_excludes") is False:
        env = {k: v for k, v in env.items() if not _matches_any(k, _DEFAULT_EXCLUDES)}
    excludes = list(policy.get("exclude") or ())
    if excludes:
        env = {k: v for k, v in env.items() if not _matches_any(k, excludes)}
    for key, value in (policy.get("set") or {}).items():
        env[str(key)] = str(value)
    include_only = list(policy.get("include_only") or ())
    if include_only:
        env = {k: v for k, v in env.items() if _matches_any(k, include_only)}
    return env


# --- running -----------------------------------------------------------------------------------


@dataclass
class _Stream:
    name: StreamName
    data: bytearray = field(default_factory=bytearray)
    deltas: int = 0
    done: trio.Event = field(default_factory=trio.Event)


async def _pump(source: trio.abc.ReceiveStream, stream: _Stream, sink: OutputSink | None) -> None:
    try:
        while True:
            chunk = await source.receive_some(_READ_CHUNK)
            if not chunk:
                return
            if sink is not None and stream.deltas < MAX_OUTPUT_DELTAS_PER_STREAM:
                stream.deltas += 1
                await sink(stream.name, bytes(chunk))
            room = OUTPUT_MAX_BYTES - len(stream.data)
            if room > 0:
                stream.data += chunk[:room]
            # Past the cap, keep reading to the end so the command never blocks on a full pipe.
    finally:
        stream.done.set()


def _kill_group(proc: trio.Process) -> None:
    # The group outlives its leader while any member is alive, and its id is not reused meanwhile.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def aggregate_output(stdout: bytes, stderr: bytes, cap: int = OUTPUT_MAX_BYTES) -> bytes:
    """stdout then stderr within ``cap``; when both do not fit, stdout keeps up to a third and stderr
    the rest, stdout taking back what stderr leaves unused (the reference's split)."""
    if len(stdout) + len(stderr) <= cap:
        return stdout + stderr
    want_stdout = min(len(stdout), cap // 3)
    stderr_take = min(len(stderr), cap - want_stdout)
    remaining = cap - want_stdout - stderr_take
    stdout_take = want_stdout + min(remaining, len(stdout) - want_stdout)
    return stdout[:stdout_take] + stderr[:stderr_take]


async def _spawn(argv: list[str], req: ExecRequest, env: dict[str, str], bwrap: str | None) -> trio.Process:
    """Start the command (under bwrap when sandboxed) in a new session, stdin /dev/null."""
    seccomp_fd: int | None = None
    try:
        if req.sandbox is not None:
            program = None if req.sandbox.network else network_seccomp_program()
            if program is not None:
                # A pipe (the program is far below its buffer) that bwrap reads the filter from.
                seccomp_fd, write_end = os.pipe()
                try:
                    os.write(write_end, program)
                finally:
                    os.close(write_end)
            argv = wrap_argv(argv, req.sandbox, req.cwd, seccomp_fd=seccomp_fd, bwrap=bwrap)
        return await trio.lowlevel.open_process(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(req.cwd),
            env=env,
            start_new_session=True,
            pass_fds=(seccomp_fd,) if seccomp_fd is not None else (),
        )
    except OSError as exc:
        raise ExecError.from_os_error(exc) from None
    finally:
        if seccomp_fd is not None:
            os.close(seccomp_fd)


async def run_exec(req: ExecRequest, on_output: OutputSink | None = None) -> ExecResult:
    """Run ``req`` to completion, its timeout, or the cancellation of the calling scope; in the last
    two cases the whole process group is killed first. Raises ExecError when it cannot start."""
    argv = list(req.argv)
    if not argv:
        raise ExecError.invalid_input("command args are empty")
    env = dict(os.environ if req.env is None else req.env)
    bwrap: str | None = None
    if req.sandbox is not None:
        bwrap = bwrap_path()
        if bwrap is None:
            raise SandboxUnavailableError()
        if not req.sandbox.network:
            env[NETWORK_DISABLED_ENV] = "1"
    timeout_ms = DEFAULT_TIMEOUT_MS if req.timeout_ms is None else max(req.timeout_ms, 0)
    started = time.monotonic()
    proc = await _spawn(argv, req, env, bwrap)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Stream("stdout"), _Stream("stderr")
    timed_out = False
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump, proc.stdout, out, on_output)
            nursery.start_soon(_pump, proc.stderr, err, on_output)
            with trio.move_on_after(timeout_ms / 1000) as deadline:
                await proc.wait()
            if deadline.cancelled_caught:
                timed_out = True
                _kill_group(proc)
                with trio.move_on_after(KILL_WAIT_SECONDS):
                    await proc.wait()
            # A child that left the group (or a background job) may hold the pipes: bounded wait.
            with trio.move_on_after(IO_DRAIN_SECONDS):
                await out.done.wait()
                await err.done.wait()
            nursery.cancel_scope.cancel()
    except BaseException:
        _kill_group(proc)
        with trio.CancelScope(shield=True), trio.move_on_after(KILL_WAIT_SECONDS):
            await proc.wait()
        raise
    finally:
        await trio.aclose_forcefully(proc.stdout)
        await trio.aclose_forcefully(proc.stderr)
    duration = time.monotonic() - started
    sig: int | None = None
    if timed_out:
        exit_code = TIMEOUT_EXIT_CODE
    else:
        returncode = proc.returncode
        assert returncode is not None
        sig = -returncode if returncode < 0 else None
        exit_code = -1 if sig is not None else returncode
    result = ExecResult(
        exit_code=exit_code,
        stdout=bytes(out.data),
        stderr=bytes(err.data),
        aggregated_output=aggregate_output(bytes(out.data), bytes(err.data)),
        duration=duration,
        timed_out=timed_out,
        sandbox_denied=False,
        signal=sig,
    )
    if req.sandbox is not None and not timed_out and sig is None:
        result.sandbox_denied = is_likely_sandbox_denied(result)
    return result


def is_likely_sandbox_denied(result: ExecResult) -> bool:
    """The reference's guess that a sandboxed run failed because of the sandbox (see safety)."""
    return safety.is_likely_sandbox_denied(
        result.exit_code, result.stdout, result.stderr, sandboxed=True, timed_out=result.timed_out
    )


# --- truncation for the model --------------------------------------------------------------------

_APPROX_BYTES_PER_TOKEN = 4


@dataclass(frozen=True)
class TruncationPolicy:
    """A model's budget for tool output: bytes, or tokens counted as 4 bytes each."""

    mode: Literal["bytes", "tokens"]
    limit: int

    @property
    def byte_budget(self) -> int:
        return self.limit if self.mode == "bytes" else self.limit * _APPROX_BYTES_PER_TOKEN

    def scaled(self, factor: float) -> TruncationPolicy:
        """The budget times ``factor``, rounded up (the history keeps function outputs within the
        policy scaled by 1.2, to leave room for their serialization)."""
        return TruncationPolicy(self.mode, math.ceil(self.limit * factor))


# Observed on the reference: 10,000 bytes for mock-model (any model it does not know), gpt-5 and
# gpt-5.2; 10,000 tokens for gpt-5.2-codex and gpt-5.1-codex-mini.
DEFAULT_TRUNCATION = TruncationPolicy("bytes", 10_000)
TOKENS_TRUNCATION = TruncationPolicy("tokens", 10_000)


def _is_continuation(byte: int) -> bool:
    return 0x80 <= byte < 0xC0


def _rust_lines(text: str) -> int:
    """str::lines().count(): lines end at \\n, and a final \\n does not start another line."""
    if not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def _truncate_middle(text: str, max_bytes: int, use_tokens: bool) -> str:
    if not text:
        return ""
    data = text.encode("utf-8")
    if max_bytes == 0:
        removed = -(-len(data) // _APPROX_BYTES_PER_TOKEN) if use_tokens else len(text)
        return _marker(use_tokens, removed)
    if len(data) <= max_bytes:
        return text
    left = max_bytes // 2
    right = max_bytes - left
    prefix_end = min(left, len(data))
    while 0 < prefix_end < len(data) and _is_continuation(data[prefix_end]):
        prefix_end -= 1
    suffix_start = len(data) - right
    while suffix_start < len(data) and _is_continuation(data[suffix_start]):
        suffix_start += 1
    suffix_start = max(suffix_start, prefix_end)
    if use_tokens:
        removed = -(-(len(data) - max_bytes) // _APPROX_BYTES_PER_TOKEN)
    else:
        removed = len(data[prefix_end:suffix_start].decode("utf-8"))
    return (
        data[:prefix_end].decode("utf-8")
        + _marker(use_tokens, removed)
        + data[suffix_start:].decode("utf-8")
    )


def _marker(use_tokens: bool, removed: int) -> str:
    return f"…{removed} tokens truncated…" if use_tokens else f"…{removed} chars truncated…"


def truncate_text(text: str, policy: TruncationPolicy) -> str:
    """Keep the head and the tail within the budget, with a marker saying how much went."""
    if policy.mode == "bytes":
        return _truncate_middle(text, policy.limit, use_tokens=False)
    if not text:
        return ""
    if policy.limit > 0 and len(text.encode("utf-8")) <= policy.byte_budget:
        return text
    return _truncate_middle(text, policy.byte_budget, use_tokens=True)


def formatted_truncate_text(text: str, policy: TruncationPolicy) -> str:
    """truncate_text, announcing the original line count when something was cut."""
    if len(text.encode("utf-8")) <= policy.byte_budget:
        return text
    return f"Total output lines: {_rust_lines(text)}\n\n{truncate_text(text, policy)}"


# --- formatting for the model ------------------------------------------------------------------


def _f32(value: float) -> float:
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return result


def _rounded_seconds(duration: float) -> float:
    """Seconds rounded to a tenth in single precision, the reference's arithmetic."""
    tenths = _f32(_f32(duration) * 10.0)
    rounded = math.floor(tenths + 0.5)  # half away from zero, for a non-negative value
    return _f32(rounded / 10.0)


def _f32_digits(value: float) -> str:
    """The shortest decimal that reads back as the same single-precision value, unexponented."""
    for precision in range(1, 18):
        text = f"{value:.{precision}g}"
        if _f32(float(text)) == value:
            break
    return format(Decimal(text), "f")


def _f32_json(value: float) -> str:
    digits = _f32_digits(value)
    return digits if "." in digits else digits + ".0"


def _content(result: ExecResult) -> str:
    if result.timed_out:
        return f"command timed out after {result.duration_ms} milliseconds\n{result.aggregated_text}"
    return result.aggregated_text


def formatted_output(result: ExecResult, policy: TruncationPolicy = DEFAULT_TRUNCATION) -> str:
    """The output as the legacy ``exec_command_end`` event's ``formatted_output`` carries it: the
    model's view without the JSON or freeform wrapping."""
    return formatted_truncate_text(_content(result), policy)


def format_output_json(result: ExecResult, policy: TruncationPolicy = DEFAULT_TRUNCATION) -> str:
    """The ``shell`` tool's output for the model:
    ``{"output":"hi\\n","metadata":{"exit_code":0,"duration_seconds":0.0}}``."""
    output = formatted_truncate_text(_content(result), policy)
    return (
        f'{{"output":{json.dumps(output, ensure_ascii=False)},'
        f'"metadata":{{"exit_code":{result.exit_code},'
        f'"duration_seconds":{_f32_json(_rounded_seconds(result.duration))}}}}}'
    )


def format_output_freeform(result: ExecResult, policy: TruncationPolicy = DEFAULT_TRUNCATION) -> str:
    """The text form: ``Exit code: 0\\nWall time: 0 seconds\\n[Total output lines: N\\n]Output:\\n…``
    (``shell_command``; and ``shell`` on models whose apply_patch is freeform, via
    reserialize_shell_output)."""
    content = _content(result)
    total_lines = _rust_lines(content)
    output = truncate_text(content, policy)
    sections = [
        f"Exit code: {result.exit_code}",
        f"Wall time: {_f32_digits(_rounded_seconds(result.duration))} seconds",
    ]
    if total_lines != _rust_lines(output):
        sections.append(f"Total output lines: {total_lines}")
    sections += ["Output:", output]
    return "\n".join(sections)


_I32 = (-(2**31), 2**31 - 1)


def reserialize_shell_output(raw: str) -> str | None:
    """The freeform text for a JSON shell output, or None when ``raw`` is not one. The reference
    applies this, when building a request whose tools include the freeform apply_patch, to the
    outputs of ``shell``/``shell_command``/``container.exec``/``apply_patch`` calls, after the
    history truncated them."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("output"), str):
        return None
    metadata = parsed.get("metadata")
    if not isinstance(metadata, dict):
        return None
    exit_code, seconds = metadata.get("exit_code"), metadata.get("duration_seconds")
    if type(exit_code) is not int or not _I32[0] <= exit_code <= _I32[1]:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return None
    output: str = parsed["output"]
    sections = [f"Exit code: {exit_code}", f"Wall time: {_f32_digits(_f32(float(seconds)))} seconds"]
    header = _strip_total_output_header(output)
    if header is not None:
        output, total_lines = header
        sections.append(f"Total output lines: {total_lines}")
    sections += ["Output:", output]
    return "\n".join(sections)


def _strip_total_output_header(output: str) -> tuple[str, int] | None:
    prefix = "Total output lines: "
    if not output.startswith(prefix) or "\n" not in output:
        return None
    count, remainder = output[len(prefix) :].split("\n", 1)
    digits = count[1:] if count.startswith("+") else count
    if not digits.isascii() or not digits.isdigit() or int(digits) > 2**32 - 1:
        return None
    return remainder.removeprefix("\n"), int(digits)
