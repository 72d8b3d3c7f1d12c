"""The command-execution layer: real processes (streaming, exit codes, timeout and cancellation that
leave no process behind, output caps, spawn errors) and the model-facing formats, checked against
outputs captured from the reference (Codex CLI 0.94.0) for the same commands."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
from pathlib import Path

import pytest
import trio

from codex_trio.core import exec as ex
from codex_trio.core.exec import (
    DEFAULT_TRUNCATION,
    TOKENS_TRUNCATION,
    ExecError,
    ExecRequest,
    ExecResult,
    TruncationPolicy,
    aggregate_output,
    exec_env,
    format_output_freeform,
    format_output_json,
    format_signal_error,
    formatted_truncate_text,
    is_likely_sandbox_denied,
    reserialize_shell_output,
    run_exec,
    truncate_text,
)

# How long a test waits at most for a killed process to be gone.
GONE_WITHIN = 5.0


def _state(pid: int) -> str | None:
    """The process's state letter, or None once it no longer exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


async def assert_gone(pid: int) -> None:
    # A zombie is dead: it only waits for a parent (maybe a container's init) to reap it.
    with trio.move_on_after(GONE_WITHIN):
        while _state(pid) not in (None, "Z"):
            await trio.sleep(0.01)
    assert _state(pid) in (None, "Z"), f"process {pid} survived"


def _kill_if_alive(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 9)


class Sink:
    def __init__(self) -> None:
        self.chunks: list[tuple[str, bytes]] = []

    async def __call__(self, stream: ex.StreamName, data: bytes) -> None:
        self.chunks.append((stream, data))

    def text(self, stream: str) -> bytes:
        return b"".join(d for s, d in self.chunks if s == stream)


def result(output: bytes, duration: float = 0.0, exit_code: int = 0, timed_out: bool = False) -> ExecResult:
    return ExecResult(exit_code, output, b"", output, duration, timed_out, False)


SEQ_100000 = "".join(f"{i}\n" for i in range(1, 100_001)).encode()


# --- running ------------------------------------------------------------------------------------


async def test_output_streams_and_aggregates_stdout_then_stderr(tmp_path: Path) -> None:
    sink = Sink()
    res = await run_exec(ExecRequest(["sh", "-c", "echo out; echo err >&2; exit 3"], tmp_path), sink)
    assert (res.exit_code, res.stdout, res.stderr) == (3, b"out\n", b"err\n")
    assert res.aggregated_output == b"out\nerr\n"
    assert not res.timed_out and not res.sandbox_denied and res.signal is None
    assert sink.text("stdout") == b"out\n" and sink.text("stderr") == b"err\n"
    assert 0 <= res.duration < 5


async def test_chunks_arrive_while_the_command_runs(tmp_path: Path) -> None:
    # The sink sees "first" long before the command could end: it cancels the run from there.
    seen_at: list[float] = []
    started = trio.current_time()
    with trio.CancelScope() as scope:

        async def sink(stream: ex.StreamName, data: bytes) -> None:
            seen_at.append(trio.current_time() - started)
            scope.cancel()

        await run_exec(ExecRequest(["sh", "-c", "echo first; sleep 30"], tmp_path, timeout_ms=60_000), sink)
    assert scope.cancelled_caught
    assert seen_at and seen_at[0] < 5


async def test_runs_in_cwd_with_stdin_closed_and_the_given_env(tmp_path: Path) -> None:
    res = await run_exec(
        ExecRequest(
            ["sh", "-c", 'pwd; cat; echo "[$ONLY]"; env | grep -c . '],
            tmp_path,
            env={"ONLY": "me", "PATH": os.environ["PATH"]},
        )
    )
    lines = res.stdout.decode().splitlines()
    assert lines[0] == str(tmp_path)
    assert lines[1] == "[me]"  # cat read nothing: stdin is /dev/null
    assert "CODEX_SANDBOX_NETWORK_DISABLED" not in res.stdout_text


async def test_env_none_is_the_server_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXEC_TEST_MARK", "inherited")
    res = await run_exec(ExecRequest(["sh", "-c", "echo $EXEC_TEST_MARK"], tmp_path))
    assert res.stdout == b"inherited\n"


async def test_timeout_kills_the_whole_group_like_the_reference(tmp_path: Path) -> None:
    sink = Sink()
    res = await run_exec(
        ExecRequest(["sh", "-c", "sleep 60 & echo $!; wait"], tmp_path, timeout_ms=300), sink
    )
    child = int(res.stdout.split()[0])
    try:
        assert res.timed_out and res.exit_code == 124 and res.signal is None
        assert 0.3 <= res.duration < 3
        await assert_gone(child)
        text = format_output_json(res)
        assert text.startswith(
            f'{{"output":"command timed out after {res.duration_ms} milliseconds\\n{child}\\n"'
        )
        assert re.search(r'"metadata":\{"exit_code":124,"duration_seconds":(0\.[3-9]|[12]\.[0-9])\}\}$', text)
    finally:
        _kill_if_alive(child)


async def test_cancellation_kills_the_whole_group(tmp_path: Path) -> None:
    pids: list[int] = []
    with trio.CancelScope() as scope:

        async def sink(stream: ex.StreamName, data: bytes) -> None:
            pids.append(int(data.split()[0]))
            scope.cancel()

        await run_exec(ExecRequest(["sh", "-c", "sleep 60 & echo $!; wait"], tmp_path), sink)
    assert scope.cancelled_caught and pids
    try:
        await assert_gone(pids[0])
    finally:
        _kill_if_alive(pids[0])


async def test_a_background_child_holding_the_pipes_delays_the_result_boundedly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command is done but its background job keeps stdout open: the result comes after the
    # drain bound with what was read, and (like the reference) the job is left running.
    monkeypatch.setattr(ex, "IO_DRAIN_SECONDS", 0.3)
    res = await run_exec(ExecRequest(["sh", "-c", "sleep 30 & echo $!"], tmp_path))
    child = int(res.stdout.split()[0])
    try:
        assert res.exit_code == 0 and not res.timed_out
        assert 0.3 <= res.duration < 3
        assert _state(child) not in (None, "Z")
    finally:
        _kill_if_alive(child)


async def test_killed_by_a_signal_is_reported_as_the_reference_does(tmp_path: Path) -> None:
    res = await run_exec(ExecRequest(["sh", "-c", "echo pre; kill -9 $$"], tmp_path))
    assert res.signal == 9 and res.exit_code == -1 and res.stdout == b"pre\n"
    assert format_signal_error(9) == "execution error: Sandbox(Signal(9))"


async def test_output_is_capped_but_read_to_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ex, "MAX_OUTPUT_DELTAS_PER_STREAM", 3)
    sink = Sink()
    script = (
        "import sys\n"
        "for _ in range(40): sys.stdout.write('a' * 65536); sys.stdout.flush()\n"
        "print('end', file=sys.stderr)"
    )
    res = await run_exec(ExecRequest([sys.executable, "-c", script], tmp_path), sink)
    assert res.exit_code == 0
    assert res.stdout == b"a" * ex.OUTPUT_MAX_BYTES
    assert res.stderr == b"end\n"
    # stdout takes 1 MiB less what stderr needs, stderr follows.
    assert res.aggregated_output == b"a" * (ex.OUTPUT_MAX_BYTES - 4) + b"end\n"
    assert len([c for c in sink.chunks if c[0] == "stdout"]) == 3
    assert sink.text("stderr") == b"end\n"


def test_aggregate_split_when_both_streams_overflow() -> None:
    cap = 90
    assert aggregate_output(b"o" * 50, b"e" * 50, cap) == b"o" * 40 + b"e" * 50
    assert aggregate_output(b"o" * 200, b"e" * 200, cap) == b"o" * 30 + b"e" * 60
    assert aggregate_output(b"o" * 200, b"e" * 10, cap) == b"o" * 80 + b"e" * 10
    assert aggregate_output(b"o", b"e", cap) == b"oe"


async def test_missing_program_is_an_exec_error_worded_like_the_reference(tmp_path: Path) -> None:
    with pytest.raises(ExecError) as info:
        await run_exec(ExecRequest(["no_such_program_for_codex_trio"], tmp_path))
    assert str(info.value) == "No such file or directory (os error 2)"
    assert info.value.model_text == (
        'execution error: Io(Os { code: 2, kind: NotFound, message: "No such file or directory" })'
    )


async def test_missing_cwd_and_empty_argv_are_exec_errors(tmp_path: Path) -> None:
    with pytest.raises(ExecError, match=r"\(os error 2\)"):
        await run_exec(ExecRequest(["true"], tmp_path / "absent"))
    with pytest.raises(ExecError) as info:
        await run_exec(ExecRequest([], tmp_path))
    assert info.value.model_text == (
        'execution error: Io(Custom { kind: InvalidInput, error: "command args are empty" })'
    )


async def test_invalid_utf8_is_replaced_not_fatal(tmp_path: Path) -> None:
    res = await run_exec(ExecRequest(["printf", "\\377\\376 ok"], tmp_path))
    assert res.stdout_text == "\ufffd\ufffd ok"


# --- environment --------------------------------------------------------------------------------


def test_exec_env_follows_the_shell_environment_policy() -> None:
    base = {"PATH": "/bin", "HOME": "/h", "OPENAI_API_KEY": "k", "MY_SECRET": "s", "PLAIN": "p"}
    # The reference's default passes everything through, secrets included.
    assert exec_env(base, None) == base
    assert exec_env(base, {"ignore_default_excludes": False}) == {"PATH": "/bin", "HOME": "/h", "PLAIN": "p"}
    assert exec_env(base, {"inherit": "core"}) == {"PATH": "/bin", "HOME": "/h"}
    assert exec_env(base, {"inherit": "none", "set": {"A": "1"}}) == {"A": "1"}
    assert exec_env(base, {"exclude": ["pl?in", "*_key"]}) == {
        "PATH": "/bin",
        "HOME": "/h",
        "MY_SECRET": "s",
    }
    assert exec_env(base, {"include_only": ["p*"], "set": {"PX": "x"}}) == {
        "PATH": "/bin",
        "PLAIN": "p",
        "PX": "x",
    }


# --- formats, against the reference --------------------------------------------------------------


def test_json_output_matches_the_reference() -> None:
    assert (
        format_output_json(result(b"hi\n", 0.008))
        == '{"output":"hi\\n","metadata":{"exit_code":0,"duration_seconds":0.0}}'
    )
    mixed = ExecResult(3, b"out\n", b"err\n", b"out\nerr\n", 0.006, False, False)
    assert (
        format_output_json(mixed)
        == '{"output":"out\\nerr\\n","metadata":{"exit_code":3,"duration_seconds":0.0}}'
    )
    assert format_output_json(result(b"before\n", 0.513, 124, True)) == (
        '{"output":"command timed out after 513 milliseconds\\nbefore\\n",'
        '"metadata":{"exit_code":124,"duration_seconds":0.5}}'
    )
    assert format_output_json(result(b"x\n", 1.269)).endswith('"duration_seconds":1.3}}')
    assert (
        format_output_json(result(b"", 4.006))
        == '{"output":"","metadata":{"exit_code":0,"duration_seconds":4.0}}'
    )


def test_freeform_output_matches_the_reference() -> None:
    assert (
        format_output_freeform(result(b"out\nerr\n", 0.012, 3))
        == "Exit code: 3\nWall time: 0 seconds\nOutput:\nout\nerr\n"
    )
    assert format_output_freeform(result(b"before\n", 0.511, 124, True), TOKENS_TRUNCATION) == (
        "Exit code: 124\nWall time: 0.5 seconds\nOutput:\ncommand timed out after 511 milliseconds\nbefore\n"
    )
    assert (
        format_output_freeform(result(b"x\n", 1.27)) == "Exit code: 0\nWall time: 1.3 seconds\nOutput:\nx\n"
    )


def test_long_single_line_is_cut_in_the_middle_by_chars() -> None:
    # python3 -c "print('x'*30000)" through the reference's shell tool (mock-model: 10,000 bytes).
    text = format_output_json(result(b"x" * 30000 + b"\n", 0.1))
    assert text == (
        '{"output":"Total output lines: 1\\n\\n'
        + "x" * 5000
        + "…20001 chars truncated…"
        + "x" * 4999
        + '\\n","metadata":{"exit_code":0,"duration_seconds":0.1}}'
    )
    # Under a 10,000-token budget it fits whole.
    freeform = format_output_freeform(result(b"x" * 30000 + b"\n", 0.058), TOKENS_TRUNCATION)
    assert freeform == "Exit code: 0\nWall time: 0.1 seconds\nOutput:\n" + "x" * 30000 + "\n"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_seq_100000_as_the_reference_sent_it_upstream() -> None:
    # `seq 1 100000` through the reference: the function_call_output its mock received, byte for
    # byte (sha256 of the captured string), including the history's second cut at 1.2x the budget.
    history = DEFAULT_TRUNCATION.scaled(1.2)
    shell_json = truncate_text(format_output_json(result(SEQ_100000)), history)
    assert shell_json.startswith('{"output":"Total output lines: 100000\\n\\n1\\n2\\n3\\n')
    assert "1178…176 chars truncated…1208" in shell_json and "…578895 chars truncated…" in shell_json
    assert _sha(shell_json) == "330b43638536ebae579d65f4540321e79ea0b6bfa8bb0756da68d1d6ca2107d6"
    # gpt-5.2-codex's shell_command (10,000 tokens).
    codex = truncate_text(
        format_output_freeform(result(SEQ_100000), TOKENS_TRUNCATION), TOKENS_TRUNCATION.scaled(1.2)
    )
    assert codex.startswith("Exit code: 0\nWall time: 0 seconds\nTotal output lines: 100000\nOutput:\n1\n2\n")
    assert "…137224 tokens truncated…" in codex
    assert _sha(codex) == "eab958656bcf4885f26f2e10999a724a0437450a0a26c6bbbfcb0a764fb237cd"
    # gpt-5.2's shell: the JSON, cut by the history, then turned into text for the request.
    reserialized = reserialize_shell_output(shell_json)
    assert reserialized is not None
    assert reserialized.startswith(
        "Exit code: 0\nWall time: 0 seconds\nTotal output lines: 100000\nOutput:\n1\n"
    )
    assert _sha(reserialized) == "e917433882b7640089fef8cfbedf68dc7bca1d6b5dee89c85418ef33e0ba4380"


def test_truncation_keeps_utf8_whole_and_counts_chars() -> None:
    text = "é" * 20  # 40 bytes
    cut = truncate_text(text, TruncationPolicy("bytes", 11))
    assert cut == "éé…15 chars truncated…ééé"
    assert truncate_text("", TruncationPolicy("bytes", 0)) == ""
    assert truncate_text("abcd", TruncationPolicy("bytes", 0)) == "…4 chars truncated…"
    assert truncate_text("abcdefgh", TruncationPolicy("tokens", 1)) == "ab…1 tokens truncated…gh"
    assert formatted_truncate_text("a\nb\n", TruncationPolicy("bytes", 10)) == "a\nb\n"
    assert (
        formatted_truncate_text("a\nb\nc", TruncationPolicy("bytes", 2))
        == "Total output lines: 3\n\na…3 chars truncated…c"
    )
    assert TruncationPolicy("bytes", 10_000).scaled(1.2) == TruncationPolicy("bytes", 12_000)


def test_reserialize_only_takes_shell_json() -> None:
    assert reserialize_shell_output(
        '{"output":"hi\\n","metadata":{"exit_code":0,"duration_seconds":0.0}}'
    ) == ("Exit code: 0\nWall time: 0 seconds\nOutput:\nhi\n")
    assert reserialize_shell_output('{"output":"x","metadata":{"exit_code":1,"duration_seconds":2.5}}') == (
        "Exit code: 1\nWall time: 2.5 seconds\nOutput:\nx"
    )
    assert reserialize_shell_output("Exit code: 0\nWall time: 0 seconds\nOutput:\n") is None
    assert (
        reserialize_shell_output('{"output":"x","metadata":{"exit_code":1.0,"duration_seconds":0}}') is None
    )
    assert reserialize_shell_output('{"output":"x"}') is None


def test_sandbox_denied_heuristic() -> None:
    def res(code: int, stderr: bytes) -> ExecResult:
        return ExecResult(code, b"", stderr, stderr, 0.0, False, False)

    assert is_likely_sandbox_denied(res(1, b"touch: cannot touch 'x': Read-only file system\n"))
    assert is_likely_sandbox_denied(res(1, b"PermissionError: [Errno 1] Operation not permitted\n"))
    assert is_likely_sandbox_denied(res(127, b"bash: x: Permission denied\n"))  # keywords first
    assert not is_likely_sandbox_denied(res(0, b"Operation not permitted"))
    assert not is_likely_sandbox_denied(res(127, b"bash: nope: command not found\n"))
    assert not is_likely_sandbox_denied(res(1, b"plain failure\n"))
    assert is_likely_sandbox_denied(res(159, b""))  # 128 + SIGSYS
