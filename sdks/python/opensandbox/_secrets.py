"""Secret routes shared by projects and secret groups (``{base}/secrets/{NAME}``)."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence

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


def set_secret_at(
    client: HttpClient, base: str, name: str, value: str, allowed_hosts: Optional[Sequence[str]]
) -> Optional[SecretInfo]:
    if not isinstance(value, str):
        # Say what is wrong without echoing what was passed.
        raise ConfigurationError(f"secret value must be a str, got {type(value).__name__}")
    body: Dict[str, Any] = {"value": value}
    if allowed_hosts is not None:
        if isinstance(allowed_hosts, str):
            raise ConfigurationError("allowed_hosts must be a list of host names, not a str")
        body["allowedHosts"] = list(allowed_hosts)
    data = client.send(ApiRequest("PUT", secret_path(base, name), body, sensitive=[value]))
    return SecretInfo.from_json(data) if isinstance(data, dict) else None


def list_secrets_at(client: HttpClient, base: str) -> List[SecretInfo]:
    data = client.send(ApiRequest("GET", f"{base}/secrets"))
    return [SecretInfo.from_json(x) for x in data] if isinstance(data, list) else []


def delete_secret_at(client: HttpClient, base: str, name: str) -> None:
    client.send(ApiRequest("DELETE", secret_path(base, name)))
