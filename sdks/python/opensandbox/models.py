"""Data returned by the API, as frozen dataclasses with Python names.

Parsing is lenient: a field the server leaves out gets a neutral default, and
every object keeps the server's JSON in ``raw`` (hidden from ``repr``) so
fields added to the API later are reachable before the SDK names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

__all__ = ["ProjectInfo", "SecretInfo", "SecretGroupInfo", "SandboxInfo", "ExecResult"]


def _str(d: Mapping[str, Any], key: str) -> str:
    v = d.get(key)
    return v if isinstance(v, str) else ""


def _int(d: Mapping[str, Any], key: str) -> int:
    v = d.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _opt_int(d: Mapping[str, Any], key: str) -> Optional[int]:
    v = d.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _strs(d: Mapping[str, Any], key: str) -> List[str]:
    v = d.get(key)
    return [x for x in v if isinstance(x, str)] if isinstance(v, list) else []


def _obj(data: Any) -> Mapping[str, Any]:
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class ProjectInfo:
    """A project: defaults for its sandboxes, and the owner of a set of secrets."""

    id: str
    org_id: str
    name: str
    template: str
    cpu_count: int
    memory_mb: int
    timeout_sec: int
    egress_allowlist: List[str]
    secret_groups: List[str]
    created_at: str
    updated_at: str
    disk_mb: Optional[int] = None  # default writable disk of image sandboxes, MB
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> "ProjectInfo":
        d = _obj(data)
        return cls(
            id=_str(d, "id"),
            org_id=_str(d, "orgId"),
            name=_str(d, "name"),
            template=_str(d, "template"),
            cpu_count=_int(d, "cpuCount"),
            memory_mb=_int(d, "memoryMB"),
            disk_mb=_opt_int(d, "diskMB"),
            timeout_sec=_int(d, "timeoutSec"),
            egress_allowlist=_strs(d, "egressAllowlist"),
            secret_groups=_strs(d, "secretGroups"),
            created_at=_str(d, "createdAt"),
            updated_at=_str(d, "updatedAt"),
            raw=dict(d),
        )


@dataclass(frozen=True)
class SecretInfo:
    """Metadata of a stored secret. Values are write-only and never returned."""

    name: str
    #: Where the real value may be sent. ``["*"]`` = any host the sandbox may
    #: reach; empty = only the hosts on the sandbox's egress allowlist, and
    #: none at all when that allowlist is empty.
    allowed_hosts: List[str]
    created_at: str
    updated_at: str
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: "value", "hmac", "aws-sigv4" or "oauth2-refresh".
    kind: str = "value"
    #: A signing kind's non-secret material fields (never its key or tokens).
    material: Dict[str, Any] = field(default_factory=dict)
    #: Request rules {"host", "methods", "pathPrefix"}; empty = every request.
    allowed_requests: List[Dict[str, Any]] = field(default_factory=list)
    on_disallowed_request: str = "seal"
    #: Only from set_secret, when there is advice: e.g. the secret has no
    #: allowed hosts and the project's egress allowlist is empty, so it will
    #: not be sent to any host.
    warnings: List[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Any) -> "SecretInfo":
        d = _obj(data)
        # A well-behaved server never returns a value; drop one defensively if it did.
        safe = {k: v for k, v in d.items() if k != "value"}
        return cls(
            name=_str(d, "name"),
            allowed_hosts=_strs(d, "allowedHosts"),
            created_at=_str(d, "createdAt"),
            updated_at=_str(d, "updatedAt"),
            kind=d.get("kind") if isinstance(d.get("kind"), str) else "value",
            material=d.get("material") if isinstance(d.get("material"), dict) else {},
            allowed_requests=[r for r in d.get("allowedRequests") or [] if isinstance(r, dict)],
            on_disallowed_request=d.get("onDisallowedRequest") if isinstance(d.get("onDisallowedRequest"), str) else "seal",
            raw=safe,
            warnings=_strs(d, "warnings"),
        )


@dataclass(frozen=True)
class SecretGroupInfo:
    """An org-level, named set of secrets that projects can attach."""

    id: str
    name: str
    org_id: str = ""
    created_at: str = ""
    updated_at: str = ""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> "SecretGroupInfo":
        d = _obj(data)
        return cls(
            id=_str(d, "id"),
            name=_str(d, "name"),
            org_id=_str(d, "orgId"),
            created_at=_str(d, "createdAt"),
            updated_at=_str(d, "updatedAt"),
            raw=dict(d),
        )


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key of your org. ``key`` is set only in the answer to
    :meth:`ApiKey.create` (and is left out of ``repr``, so it does not end up
    in logs by accident)."""

    id: str
    name: str
    created_at: str = ""
    key: str = field(default="", repr=False)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: ``"admin"`` or ``"sandbox"``.
    scope: str = ""
    #: RFC 3339 UTC, or ``None`` for a key that never expires.
    expires_at: Optional[str] = None

    @classmethod
    def from_json(cls, data: Any) -> "ApiKeyInfo":
        d = _obj(data)
        expires = d.get("expiresAt")
        return cls(
            id=_str(d, "id"),
            name=_str(d, "name"),
            created_at=_str(d, "createdAt"),
            key=_str(d, "key"),
            raw=dict(d),
            scope=_str(d, "scope"),
            expires_at=expires if isinstance(expires, str) else None,
        )


@dataclass(frozen=True)
class SandboxInfo:
    """A sandbox as the server reports it (``sandboxID`` → ``sandbox_id``...)."""

    sandbox_id: str
    status: str
    project_id: str = ""
    template_id: str = ""
    cpu_count: Optional[int] = None
    memory_mb: Optional[int] = None
    disk_mb: Optional[int] = None
    started_at: str = ""
    end_at: str = ""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    metadata: Dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> "SandboxInfo":
        d = _obj(data)
        return cls(
            sandbox_id=_str(d, "sandboxID"),
            status=_str(d, "status"),
            project_id=_str(d, "projectId"),
            template_id=_str(d, "templateID"),
            cpu_count=_opt_int(d, "cpuCount"),
            memory_mb=_opt_int(d, "memoryMB"),
            disk_mb=_opt_int(d, "diskMB"),
            started_at=_str(d, "startedAt"),
            end_at=_str(d, "endAt"),
            raw=dict(d),
            metadata={str(k): str(v) for k, v in d.get("metadata", {}).items()}
            if isinstance(d.get("metadata"), dict)
            else {},
        )


@dataclass(frozen=True)
class ExecResult:
    """Result of a command run in a sandbox. A non-zero exit code is a result, not an error."""

    exit_code: int
    stdout: str
    stderr: str
    #: Set by servers that cap output: the stream was cut at the cap.
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    #: The command was killed at its timeout.
    timed_out: bool = False
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> "ExecResult":
        d = _obj(data)
        code = _opt_int(d, "exitCode")
        return cls(
            exit_code=-1 if code is None else code,
            stdout=_str(d, "stdout"),
            stderr=_str(d, "stderr"),
            stdout_truncated=d.get("stdoutTruncated") is True,
            stderr_truncated=d.get("stderrTruncated") is True,
            timed_out=d.get("timedOut") is True,
            raw=dict(d),
        )
