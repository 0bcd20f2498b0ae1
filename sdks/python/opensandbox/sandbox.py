"""Sandboxes: ``/api/sandboxes``.

A :class:`Sandbox` is a handle: the sandbox id plus the connection it was
created or connected with. Code inside the sandbox sees each project secret
only as a sealed token (``osb_sealed_`` + 32 hex); the host-side proxy swaps
in the real value on allowed HTTPS requests.

:class:`AsyncSandbox` is the same handle for ``asyncio``: each call runs the
blocking HTTP request in a worker thread (:func:`asyncio.to_thread`), so the
event loop never blocks.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ._config import ConnectionConfig
from .commands import Commands, Pty
from ._http import ApiRequest, HttpClient, seg
from .errors import ConfigurationError, OpenSandboxError
from .files import SandboxFiles
from .models import ExecResult, SandboxInfo

__all__ = ["Sandbox", "SandboxExec", "AsyncSandbox", "AsyncSandboxExec", "AsyncSandboxFiles", "build_exec_body"]

Command = Union[str, Sequence[str]]

# Saving, restoring and waking copy files: allow them more time.
_LONG_CALL_EXTRA_S = 300.0


def build_exec_body(
    cmd: Command,
    *,
    args: Optional[Sequence[str]] = None,
    envs: Optional[Mapping[str, str]] = None,
    cwd: Optional[str] = None,
    timeout: Optional[float] = None,
) -> Dict[str, Any]:
    """Turns the caller's command into the wire body of ``exec/run``.

    - ``"echo hi"`` (a str, no ``args``) runs through a shell: ``sh -c "echo hi"``;
    - ``"ls", args=["-l"]`` runs ``ls`` directly with those arguments;
    - ``["ls", "-l"]`` (an argv list or tuple) runs ``ls`` directly too.
    """
    if isinstance(cmd, str):
        if not cmd:
            raise ConfigurationError("exec: cmd must be a non-empty str or argv list")
        if args is None:
            program, argv = "sh", ["-c", cmd]
        else:
            if isinstance(args, str):
                raise ConfigurationError("exec: args must be a list of str, not a str")
            program, argv = cmd, list(args)
    elif isinstance(cmd, (list, tuple)):
        if not cmd or not isinstance(cmd[0], str) or not cmd[0]:
            raise ConfigurationError("exec: cmd list must start with a program name")
        if args is not None:
            raise ConfigurationError("exec: pass arguments either in the cmd list or in args, not both")
        program, argv = cmd[0], list(cmd[1:])
    else:
        raise ConfigurationError("exec: cmd must be a non-empty str or argv list")
    body: Dict[str, Any] = {"cmd": program, "args": argv}
    if envs is not None:
        body["envs"] = dict(envs)
    if cwd is not None:
        body["cwd"] = cwd
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
            raise ConfigurationError("exec: timeout must be a positive number of seconds")
        body["timeout"] = int(math.ceil(timeout))
    return body


class SandboxExec:
    """Runs commands in one sandbox."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self._sandbox = sandbox

    def run(
        self,
        cmd: Command,
        *,
        args: Optional[Sequence[str]] = None,
        envs: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> ExecResult:
        """Runs a command and waits for it (``POST /api/sandboxes/{id}/exec/run``).

        ``timeout`` is the command's timeout in seconds, enforced by the
        server; the HTTP request waits that long on top of ``request_timeout``.
        A non-zero exit code is a result, not an error. Never retried.
        """
        body = build_exec_body(cmd, args=args, envs=envs, cwd=cwd, timeout=timeout)
        extra = float(timeout) if timeout is not None and timeout > 0 else 0.0
        path = f"/api/sandboxes/{seg(self._sandbox.sandbox_id)}/exec/run"
        return ExecResult.from_json(self._sandbox._client.send(ApiRequest("POST", path, body, extra_timeout=extra)))


class Sandbox:
    """A handle on one sandbox. Create with :meth:`create` or :meth:`connect`.

    Usable as a context manager: ``with Sandbox.create(...) as sb:`` kills the
    sandbox on exit.
    """

    def __init__(self, info: SandboxInfo, client: HttpClient) -> None:
        self.sandbox_id: str = info.sandbox_id
        #: What the server reported when this handle was created or connected.
        self.info: SandboxInfo = info
        self._client = client
        #: Command execution: ``sandbox.exec.run(...)``.
        self.exec = SandboxExec(self)
        #: Streamed and background commands: ``sandbox.commands.run/start/list/attach/kill``.
        self.commands = Commands(self)
        #: Terminals: ``sandbox.pty.create(...)``.
        self.pty = Pty(self)
        #: Files: ``sandbox.files.read/write/list/remove/mkdir``.
        self.files = SandboxFiles(self.sandbox_id, client)

    def __repr__(self) -> str:
        return f"Sandbox(sandbox_id={self.sandbox_id!r}, status={self.info.status!r})"

    @staticmethod
    def create(
        *,
        project: Optional[str] = None,
        template_id: Optional[str] = None,
        cpu_count: Optional[int] = None,
        memory_mb: Optional[int] = None,
        disk_mb: Optional[int] = None,
        timeout: Optional[int] = None,
        envs: Optional[Mapping[str, str]] = None,
        egress_allowlist: Optional[Sequence[str]] = None,
        from_checkpoint: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
        template: Optional[str] = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> "Sandbox":
        """``POST /api/sandboxes``. Project defaults apply to what you leave out.

        ``from_checkpoint`` restores a checkpoint (its config gives the
        defaults); every restore gets fresh tokens for the project's current
        secret values. Creating several from one checkpoint forks it.

        ``timeout`` is the sandbox lifetime in seconds. ``envs`` are plain
        (unsealed) variables and win over a secret of the same name. Never
        retried; raises ServiceUnavailableError (503) when no worker is available.
        ``template`` is an alias of ``template_id`` (seed-compatible);
        ``metadata`` is a small str -> str map kept with the sandbox.
        """
        if template is not None:
            if template_id is not None and template_id != template:
                raise ConfigurationError("create: template and template_id differ (template is an alias)")
            template_id = template
        if metadata is not None and (
            not isinstance(metadata, Mapping)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
        ):
            raise ConfigurationError("create: metadata must map str to str")
        fields = {
            "project": project,
            "templateID": template_id,
            "cpuCount": cpu_count,
            "memoryMB": memory_mb,
            "diskMB": disk_mb,
            "timeout": timeout,
            "envs": None if envs is None else dict(envs),
            "egressAllowlist": None if egress_allowlist is None else list(egress_allowlist),
            "fromCheckpoint": from_checkpoint,
            "metadata": None if metadata is None else dict(metadata),
        }
        body = {k: v for k, v in fields.items() if v is not None}
        client = HttpClient(config, api_url=api_url, api_key=api_key)
        info = SandboxInfo.from_json(client.send(ApiRequest("POST", "/api/sandboxes", body)))
        if not info.sandbox_id:
            raise OpenSandboxError("server response to POST /api/sandboxes has no sandboxID", 0, "POST", "/api/sandboxes")
        return Sandbox(info, client)

    @staticmethod
    def connect(
        sandbox_id: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> "Sandbox":
        """Attaches to an existing sandbox (``GET /api/sandboxes/{id}``; NotFoundError if it is gone)."""
        client = HttpClient(config, api_url=api_url, api_key=api_key)
        info = SandboxInfo.from_json(client.send(ApiRequest("GET", f"/api/sandboxes/{seg(sandbox_id)}")))
        if not info.sandbox_id:
            info = SandboxInfo(sandbox_id=sandbox_id, status=info.status, raw=info.raw)
        return Sandbox(info, client)

    @staticmethod
    def list(
        *, api_url: Optional[str] = None, api_key: Optional[str] = None, config: Optional[ConnectionConfig] = None
    ) -> List[SandboxInfo]:
        """``GET /api/sandboxes``: the sandboxes of your org."""
        data = HttpClient(config, api_url=api_url, api_key=api_key).send(ApiRequest("GET", "/api/sandboxes"))
        return [SandboxInfo.from_json(x) for x in data] if isinstance(data, list) else []

    @staticmethod
    def get(
        sandbox_id: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> SandboxInfo:
        """``GET /api/sandboxes/{id}``."""
        client = HttpClient(config, api_url=api_url, api_key=api_key)
        return SandboxInfo.from_json(client.send(ApiRequest("GET", f"/api/sandboxes/{seg(sandbox_id)}")))

    @staticmethod
    def kill_by_id(
        sandbox_id: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> None:
        """``DELETE /api/sandboxes/{id}``: kills a sandbox by id."""
        HttpClient(config, api_url=api_url, api_key=api_key).send(
            ApiRequest("DELETE", f"/api/sandboxes/{seg(sandbox_id)}")
        )

    def get_info(self) -> SandboxInfo:
        """The current state of this sandbox."""
        return SandboxInfo.from_json(self._client.send(ApiRequest("GET", f"/api/sandboxes/{seg(self.sandbox_id)}")))

    def kill(self) -> None:
        """Kills this sandbox; afterwards the server answers 404 for it."""
        self._client.send(ApiRequest("DELETE", f"/api/sandboxes/{seg(self.sandbox_id)}"))

    # ---- checkpoints and lifetime ----

    def create_checkpoint(self) -> Dict[str, Any]:
        """``POST /api/sandboxes/{id}/checkpoints``: saves this sandbox's files and
        resolved config (not its process memory, no secrets, no tokens). Returns
        the checkpoint (``checkpointID``, ``sizeBytes``, ...)."""
        path = f"/api/sandboxes/{seg(self.sandbox_id)}/checkpoints"
        return self._client.send(ApiRequest("POST", path, {}, extra_timeout=_LONG_CALL_EXTRA_S))

    def list_checkpoints(self) -> List[Dict[str, Any]]:
        """``GET /api/sandboxes/{id}/checkpoints``."""
        data = self._client.send(ApiRequest("GET", f"/api/sandboxes/{seg(self.sandbox_id)}/checkpoints"))
        return list(data) if isinstance(data, list) else []

    def delete_checkpoint(self, checkpoint_id: str) -> None:
        """``DELETE /api/sandboxes/{id}/checkpoints/{checkpoint_id}``."""
        self._client.send(
            ApiRequest("DELETE", f"/api/sandboxes/{seg(self.sandbox_id)}/checkpoints/{seg(checkpoint_id)}")
        )

    def set_timeout(self, timeout_sec: int) -> SandboxInfo:
        """``POST /api/sandboxes/{id}/timeout``: the sandbox now ends ``timeout_sec``
        from now (at most the server's ``--max-sandbox-lifetime`` from its start)."""
        if isinstance(timeout_sec, bool) or not isinstance(timeout_sec, int) or timeout_sec <= 0:
            raise ConfigurationError("set_timeout: timeout_sec must be a positive int")
        path = f"/api/sandboxes/{seg(self.sandbox_id)}/timeout"
        return SandboxInfo.from_json(self._client.send(ApiRequest("POST", path, {"timeoutSec": timeout_sec})))

    def hibernate(self) -> SandboxInfo:
        """``POST /api/sandboxes/{id}/hibernate``: checkpoint, then free everything it holds."""
        path = f"/api/sandboxes/{seg(self.sandbox_id)}/hibernate"
        return SandboxInfo.from_json(self._client.send(ApiRequest("POST", path, {}, extra_timeout=_LONG_CALL_EXTRA_S)))

    def wake(self) -> SandboxInfo:
        """``POST /api/sandboxes/{id}/wake``: restore it under the same id, with fresh tokens."""
        path = f"/api/sandboxes/{seg(self.sandbox_id)}/wake"
        return SandboxInfo.from_json(self._client.send(ApiRequest("POST", path, {}, extra_timeout=_LONG_CALL_EXTRA_S)))

    @staticmethod
    def list_all_checkpoints(
        *, api_url: Optional[str] = None, api_key: Optional[str] = None, config: Optional[ConnectionConfig] = None
    ) -> List[Dict[str, Any]]:
        """``GET /api/checkpoints``: every checkpoint of your org."""
        data = HttpClient(config, api_url=api_url, api_key=api_key).send(ApiRequest("GET", "/api/checkpoints"))
        return list(data) if isinstance(data, list) else []

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()


class AsyncSandboxExec:
    """:class:`SandboxExec` for asyncio."""

    def __init__(self, sync: SandboxExec) -> None:
        self._sync = sync

    async def run(self, cmd: Command, **kwargs: Any) -> ExecResult:
        """Same arguments as :meth:`SandboxExec.run`."""
        return await asyncio.to_thread(self._sync.run, cmd, **kwargs)


class AsyncSandboxFiles:
    """:class:`SandboxFiles` for asyncio (each call in a worker thread)."""

    def __init__(self, sync: SandboxFiles) -> None:
        self._sync = sync

    async def read(self, path: str) -> bytes:
        return await asyncio.to_thread(self._sync.read, path)

    async def read_to(self, path: str, destination: Any) -> int:
        return await asyncio.to_thread(self._sync.read_to, path, destination)

    async def write(self, path: str, data: Any, **kwargs: Any) -> Dict[str, Any]:
        return await asyncio.to_thread(lambda: self._sync.write(path, data, **kwargs))

    async def list(self, path: str = "/home/sandbox") -> Any:
        return await asyncio.to_thread(self._sync.list, path)

    async def mkdir(self, path: str, **kwargs: Any) -> None:
        await asyncio.to_thread(lambda: self._sync.mkdir(path, **kwargs))

    async def remove(self, path: str, **kwargs: Any) -> None:
        await asyncio.to_thread(lambda: self._sync.remove(path, **kwargs))


class AsyncSandbox:
    """A handle on one sandbox for asyncio: ``sb = await AsyncSandbox.create(...)``.

    Usable as ``async with``: the sandbox is killed on exit.
    """

    def __init__(self, sync: Sandbox) -> None:
        self._sync = sync
        self.sandbox_id: str = sync.sandbox_id
        self.info: SandboxInfo = sync.info
        self.exec = AsyncSandboxExec(sync.exec)
        self.files = AsyncSandboxFiles(sync.files)

    def __repr__(self) -> str:
        return f"AsyncSandbox(sandbox_id={self.sandbox_id!r}, status={self.info.status!r})"

    @staticmethod
    async def create(**kwargs: Any) -> "AsyncSandbox":
        """Same arguments as :meth:`Sandbox.create`."""
        return AsyncSandbox(await asyncio.to_thread(lambda: Sandbox.create(**kwargs)))

    @staticmethod
    async def connect(sandbox_id: str, **kwargs: Any) -> "AsyncSandbox":
        return AsyncSandbox(await asyncio.to_thread(Sandbox.connect, sandbox_id, **kwargs))

    @staticmethod
    async def list(**kwargs: Any) -> List[SandboxInfo]:
        return await asyncio.to_thread(lambda: Sandbox.list(**kwargs))

    @staticmethod
    async def get(sandbox_id: str, **kwargs: Any) -> SandboxInfo:
        return await asyncio.to_thread(Sandbox.get, sandbox_id, **kwargs)

    @staticmethod
    async def kill_by_id(sandbox_id: str, **kwargs: Any) -> None:
        await asyncio.to_thread(Sandbox.kill_by_id, sandbox_id, **kwargs)

    async def get_info(self) -> SandboxInfo:
        return await asyncio.to_thread(self._sync.get_info)

    async def kill(self) -> None:
        await asyncio.to_thread(self._sync.kill)

    async def create_checkpoint(self) -> Dict[str, Any]:
        return await asyncio.to_thread(self._sync.create_checkpoint)

    async def list_checkpoints(self) -> List[Dict[str, Any]]:
        return await asyncio.to_thread(self._sync.list_checkpoints)

    async def delete_checkpoint(self, checkpoint_id: str) -> None:
        await asyncio.to_thread(self._sync.delete_checkpoint, checkpoint_id)

    async def set_timeout(self, timeout_sec: int) -> SandboxInfo:
        return await asyncio.to_thread(self._sync.set_timeout, timeout_sec)

    async def hibernate(self) -> SandboxInfo:
        return await asyncio.to_thread(self._sync.hibernate)

    async def wake(self) -> SandboxInfo:
        return await asyncio.to_thread(self._sync.wake)

    async def __aenter__(self) -> "AsyncSandbox":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.kill()
