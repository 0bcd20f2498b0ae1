"""Streaming exec, background commands and terminals (``sandbox.commands``, ``sandbox.pty``).

Output arrives as it is produced over a WebSocket (frame protocol: docs/api.md,
"Command WebSocket frames"). Nothing is truncated: when a callback is slow the
server stops reading the command's output (backpressure). Background commands
keep the last 1 MiB of output; an attach replays it and then follows.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from . import _websocket
from ._http import ApiRequest, seg
from .errors import ConnectionError, OpenSandboxError, error_for_status

if TYPE_CHECKING:  # pragma: no cover
    from .sandbox import Sandbox

OutputCallback = Callable[[str], None]
StdinSource = Union[str, bytes, Iterable[bytes], None]


@dataclass
class CommandInfo:
    """A command as the server lists it."""

    id: str
    cmd: str
    args: List[str]
    status: str  # "running" | "exited"
    exit_code: Optional[int]
    started_at: str
    pty: bool = False
    detached: bool = False
    signal: Optional[int] = None
    ended_at: Optional[str] = None

    @staticmethod
    def from_json(j: Mapping[str, Any]) -> "CommandInfo":
        return CommandInfo(
            id=str(j.get("id", "")),
            cmd=str(j.get("cmd", "")),
            args=list(j.get("args") or []),
            status=str(j.get("status", "")),
            exit_code=j.get("exitCode"),
            started_at=str(j.get("startedAt", "")),
            pty=bool(j.get("pty", False)),
            detached=bool(j.get("detached", False)),
            signal=j.get("signal") or None,
            ended_at=j.get("endedAt"),
        )


@dataclass
class CommandResult:
    """How a streamed command ended. ``stdout``/``stderr`` hold the output only
    when no callback consumed it."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    signal: Optional[int] = None
    timed_out: bool = False
    dropped_bytes: int = 0  # attach: output lost before the replay (retention is 1 MiB)
    command_id: str = ""


def _start_body(cmd: str, args: Optional[Sequence[str]], envs: Optional[Mapping[str, str]], cwd: Optional[str],
                timeout: Optional[int], pty: bool = False, cols: int = 80, rows: int = 24) -> Dict[str, Any]:
    if not isinstance(cmd, str) or not cmd:
        raise ValueError("cmd must be a non-empty string")
    body: Dict[str, Any] = {"cmd": cmd}
    if args:
        body["args"] = [str(a) for a in args]
    if envs:
        body["envs"] = dict(envs)
    if cwd is not None:
        body["cwd"] = cwd
    if timeout is not None:
        body["timeoutSec"] = int(timeout)
    if pty:
        body.update({"pty": True, "cols": int(cols), "rows": int(rows)})
    return body


def _feed_stdin(ws: _websocket.WebSocket, stdin: StdinSource) -> None:
    try:
        if stdin is not None:
            chunks: Iterable[bytes]
            if isinstance(stdin, str):
                chunks = [stdin.encode("utf-8")]
            elif isinstance(stdin, (bytes, bytearray)):
                chunks = [bytes(stdin)]
            else:
                chunks = stdin
            for chunk in chunks:
                data = chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
                for i in range(0, len(data), 32768):
                    ws.send_binary(b"\x00" + data[i : i + 32768])
        ws.send_json({"type": "eof"})
    except (OSError, OpenSandboxError):
        pass  # the command ended; its exit code says how


class _Decoder:
    """Incremental UTF-8 decoding per stream (a character may span frames)."""

    def __init__(self) -> None:
        import codecs

        self._dec = {1: codecs.getincrementaldecoder("utf-8")("replace"), 2: codecs.getincrementaldecoder("utf-8")("replace")}

    def decode(self, stream: int, data: bytes) -> str:
        return self._dec[stream].decode(data)


def _pump(ws: _websocket.WebSocket, path: str, on_stdout: Optional[OutputCallback],
          on_stderr: Optional[OutputCallback], collect: bool) -> CommandResult:
    dec = _Decoder()
    out: List[str] = []
    err: List[str] = []
    result: Optional[CommandResult] = None
    dropped = 0
    command_id = ""
    while True:
        msg = ws.recv()
        if msg is None:
            break
        binary, data = msg
        if binary:
            if not data or data[0] not in (1, 2):
                continue
            text = dec.decode(data[0], data[1:])
            cb = on_stdout if data[0] == 1 else on_stderr
            if cb is not None:
                cb(text)
            elif collect:
                (out if data[0] == 1 else err).append(text)
            continue
        try:
            j = json.loads(data.decode("utf-8"))
        except ValueError:
            continue
        kind = j.get("type")
        if kind == "started":
            command_id = str((j.get("command") or {}).get("id", ""))
        elif kind == "dropped":
            dropped += int(j.get("bytes", 0))
        elif kind == "exit":
            result = CommandResult(
                exit_code=int(j.get("exitCode", -1)),
                signal=j.get("signal"),
                timed_out=bool(j.get("timedOut", False)),
            )
        elif kind == "error":
            ws.shutdown()
            raise error_for_status(int(j.get("status", 500)), str(j.get("error", "stream refused")), "GET", path)
    if result is None:
        raise ConnectionError(
            f"the stream ended before the command's exit code arrived ({ws.close_code} {ws.close_reason})".strip(),
            0, "GET", path)
    result.stdout, result.stderr = "".join(out), "".join(err)
    result.dropped_bytes = dropped
    result.command_id = command_id
    return result


class Commands:
    """Commands in one sandbox: ``sandbox.commands``."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self._sandbox = sandbox

    def _base(self) -> str:
        return f"/api/sandboxes/{seg(self._sandbox.sandbox_id)}"

    def _connect(self, path: str) -> _websocket.WebSocket:
        cfg = self._sandbox._client.config
        headers = {"User-Agent": "opensandbox-python"}
        if cfg.api_key:
            headers["X-API-Key"] = cfg.api_key
        return _websocket.connect(cfg.api_url, path, headers, timeout=cfg.request_timeout or 30.0, ca_file=cfg.ca_file)

    def run(
        self,
        cmd: str,
        args: Optional[Sequence[str]] = None,
        *,
        envs: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        timeout: Optional[int] = None,
        on_stdout: Optional[OutputCallback] = None,
        on_stderr: Optional[OutputCallback] = None,
        stdin: StdinSource = None,
    ) -> CommandResult:
        """Runs ``cmd`` and streams its output to the callbacks as it is produced
        (``GET .../exec/stream``). ``stdin`` (str, bytes or an iterable of bytes)
        is sent, then end-of-input. Output without a callback is collected into
        the result. A non-zero exit code is a result, not an error."""
        path = self._base() + "/exec/stream"
        ws = self._connect(path)
        start = _start_body(cmd, args, envs, cwd, timeout)
        start["type"] = "start"
        ws.send_json(start)
        feeder = threading.Thread(target=_feed_stdin, args=(ws, stdin), daemon=True)
        feeder.start()
        try:
            return _pump(ws, path, on_stdout, on_stderr, collect=True)
        finally:
            ws.shutdown()

    def start(
        self,
        cmd: str,
        args: Optional[Sequence[str]] = None,
        *,
        envs: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        timeout: Optional[int] = None,
    ) -> CommandInfo:
        """Starts a background command (``POST .../commands``); it keeps running
        when this process goes away, until it exits, is killed, or the sandbox ends."""
        body = _start_body(cmd, args, envs, cwd, timeout)
        return CommandInfo.from_json(self._sandbox._client.send(ApiRequest("POST", self._base() + "/commands", body)))

    def list(self) -> List[CommandInfo]:
        items = self._sandbox._client.send(ApiRequest("GET", self._base() + "/commands"))
        return [CommandInfo.from_json(c) for c in items]

    def get(self, command_id: str) -> CommandInfo:
        return CommandInfo.from_json(
            self._sandbox._client.send(ApiRequest("GET", f"{self._base()}/commands/{seg(command_id)}")))

    def attach(
        self,
        command_id: str,
        *,
        on_stdout: Optional[OutputCallback] = None,
        on_stderr: Optional[OutputCallback] = None,
        stdin: StdinSource = None,
    ) -> CommandResult:
        """Replays the command's retained output, follows it until it exits and
        returns how it ended. ``stdin``, when given, is sent to the command."""
        path = f"{self._base()}/commands/{seg(command_id)}/attach"
        ws = self._connect(path)
        if stdin is not None:
            threading.Thread(target=_feed_stdin, args=(ws, stdin), daemon=True).start()
        try:
            return _pump(ws, path, on_stdout, on_stderr, collect=True)
        finally:
            ws.shutdown()

    def kill(self, command_id: str, signal: Union[str, int] = "KILL") -> CommandInfo:
        return CommandInfo.from_json(self._sandbox._client.send(
            ApiRequest("POST", f"{self._base()}/commands/{seg(command_id)}/kill", {"signal": signal})))

    def wait(self, command_id: str, timeout: int = 60) -> CommandInfo:
        """Waits up to ``timeout`` seconds (≤ 300) for the exit; the info either way."""
        return CommandInfo.from_json(self._sandbox._client.send(ApiRequest(
            "POST", f"{self._base()}/commands/{seg(command_id)}/wait?timeout={int(timeout)}",
            extra_timeout=float(timeout))))


class PtySession:
    """An interactive terminal in the sandbox. ``on_data`` gets the output."""

    def __init__(self, ws: _websocket.WebSocket, path: str, on_data: Optional[Callable[[bytes], None]]) -> None:
        self._ws = ws
        self._path = path
        self._on_data = on_data
        self._result: Optional[CommandResult] = None
        self._error: Optional[OpenSandboxError] = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            cb = self._on_data
            self._result = _pump(self._ws, self._path, (lambda t: cb(t.encode("utf-8"))) if cb else None, None,
                                 collect=cb is None)
        except OpenSandboxError as err:
            self._error = err
        finally:
            self._done.set()

    def send_input(self, data: Union[str, bytes]) -> None:
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self._ws.send_binary(b"\x00" + raw)

    def resize(self, cols: int, rows: int) -> None:
        self._ws.send_json({"type": "resize", "cols": int(cols), "rows": int(rows)})

    def kill(self, signal: Union[str, int] = "KILL") -> None:
        self._ws.send_json({"type": "signal", "signal": signal})

    def wait(self, timeout: Optional[float] = None) -> CommandResult:
        if not self._done.wait(timeout):
            raise TimeoutError("the terminal is still open")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def close(self) -> None:
        self._ws.shutdown()


class Pty:
    """Terminals in one sandbox: ``sandbox.pty``."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self._commands = Commands(sandbox)

    def create(
        self,
        *,
        cols: int = 80,
        rows: int = 24,
        cmd: Optional[str] = None,
        args: Optional[Sequence[str]] = None,
        envs: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        on_data: Optional[Callable[[bytes], None]] = None,
    ) -> PtySession:
        """Opens a terminal running ``cmd`` (default ``/bin/bash``) on a pty of ``cols``×``rows``."""
        path = self._commands._base() + "/pty"
        ws = self._commands._connect(path)
        start = _start_body(cmd or "/bin/bash", args, envs, cwd, None, pty=True, cols=cols, rows=rows)
        start["type"] = "start"
        ws.send_json(start)
        return PtySession(ws, path, on_data)
