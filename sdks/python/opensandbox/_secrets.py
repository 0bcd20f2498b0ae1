"""Secret routes shared by projects and secret groups (``{base}/secrets/{NAME}``)."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ._http import ApiRequest, HttpClient, seg
from .errors import ConfigurationError
from .models import SecretInfo

#: Secret names are environment variable names (the server's rule too).
_SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def secret_path(base: str, name: str) -> str:
    """Checks a secret name before it goes into a URL.

    The name is not echoed: a caller who swapped name and value would otherwise
    see the value in an error, and a value in a URL path lands in access logs.
    """
    if not isinstance(name, str) or not _SECRET_NAME.fullmatch(name):
        raise ConfigurationError("secret name must be an environment variable name ([A-Za-z_][A-Za-z0-9_]{0,127})")
    return f"{base}/secrets/{seg(name)}"


_KINDS = ("value", "hmac", "aws-sigv4", "oauth2-refresh")


def _strings(obj: Any) -> List[str]:
    """Every string inside a JSON-like object (to keep them out of errors)."""
    if isinstance(obj, str):
        return [obj] if obj else []
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, (list, tuple)):
        return [s for v in obj for s in _strings(v)]
    return []


def set_secret_at(
    client: HttpClient,
    base: str,
    name: str,
    value: Optional[str],
    allowed_hosts: Optional[Sequence[str]],
    kind: Optional[str] = None,
    material: Optional[Mapping[str, Any]] = None,
    allowed_requests: Optional[Sequence[Any]] = None,
    on_disallowed_request: Optional[str] = None,
) -> Optional[SecretInfo]:
    """PUT a secret: a value (kind "value") or a signing kind's material.

    allowed_requests: dicts {"host", "methods", "pathPrefix"} or strings in the
    CLI form "POST api.example.com/v1/messages".
    """
    kind = kind or "value"
    if kind not in _KINDS:
        raise ConfigurationError("kind must be one of " + ", ".join(_KINDS))
    body: Dict[str, Any] = {}
    if kind == "value":
        if not isinstance(value, str):
            # Say what is wrong without echoing what was passed.
            raise ConfigurationError(f"secret value must be a str, got {type(value).__name__}")
        if material is not None:
            raise ConfigurationError("material is for kinds hmac, aws-sigv4, oauth2-refresh")
        body["value"] = value
        sensitive = [value]
    else:
        if value is not None:
            raise ConfigurationError(f"a {kind} secret takes material=..., not a value")
        if not isinstance(material, Mapping):
            raise ConfigurationError(f"a {kind} secret needs material (a dict; see docs/secrets.md)")
        body["kind"] = kind
        body["material"] = dict(material)
        sensitive = _strings(material)
    if allowed_hosts is not None:
        if isinstance(allowed_hosts, str):
            raise ConfigurationError("allowed_hosts must be a list of host names, not a str")
        body["allowedHosts"] = list(allowed_hosts)
    if allowed_requests is not None:
        if isinstance(allowed_requests, str):
            raise ConfigurationError("allowed_requests must be a list, not a str")
        body["allowedRequests"] = [_rule(r) for r in allowed_requests]
    if on_disallowed_request is not None:
        if on_disallowed_request not in ("seal", "refuse"):
            raise ConfigurationError("on_disallowed_request must be 'seal' or 'refuse'")
        body["onDisallowedRequest"] = on_disallowed_request
    data = client.send(ApiRequest("PUT", secret_path(base, name), body, sensitive=sensitive))
    return SecretInfo.from_json(data) if isinstance(data, dict) else None


def _rule(r: Any) -> Dict[str, Any]:
    """A request rule: a dict as the API takes it, or 'METHOD[,METHOD] host[/prefix]'."""
    if isinstance(r, Mapping):
        return dict(r)
    if not isinstance(r, str) or not r.strip():
        raise ConfigurationError("each allowed request is a dict or a 'METHOD host/path' string")
    parts = r.split(None, 1)
    methods, rest = (parts[0], parts[1]) if len(parts) == 2 else ("*", parts[0])
    host, slash, path = rest.strip().partition("/")
    out: Dict[str, Any] = {"host": host, "pathPrefix": slash + path if slash else ""}
    out["methods"] = [] if methods == "*" else [m.upper() for m in methods.split(",") if m]
    return out


def list_secrets_at(client: HttpClient, base: str) -> List[SecretInfo]:
    data = client.send(ApiRequest("GET", f"{base}/secrets"))
    return [SecretInfo.from_json(x) for x in data] if isinstance(data, list) else []


def delete_secret_at(client: HttpClient, base: str, name: str) -> None:
    client.send(ApiRequest("DELETE", secret_path(base, name)))
