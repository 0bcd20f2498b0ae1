"""Connection settings and how they are resolved.

Precedence for each setting: the explicit argument, then the environment
variable, then the default. Resolved on every call (nothing cached), so a
changed environment takes effect on the next call.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Mapping, Optional
from urllib.parse import urlsplit

from .errors import ConfigurationError

DEFAULT_API_URL = "http://127.0.0.1:8080"
DEFAULT_REQUEST_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_DELAY = 0.25

__all__ = [
    "ConnectionConfig",
    "ResolvedConfig",
    "resolve_config",
    "DEFAULT_API_URL",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RETRY_DELAY",
]


@dataclass(frozen=True)
class ConnectionConfig:
    """Options for reaching the server; every field is optional.

    ``api_key`` is hidden from ``repr()``.
    """

    #: Base URL; default ``OPENSANDBOX_API_URL``, else ``http://127.0.0.1:8080``.
    api_url: Optional[str] = None
    #: API key sent as ``X-API-Key``; default ``OPENSANDBOX_API_KEY``.
    api_key: Optional[str] = None
    #: Timeout of one HTTP attempt, seconds (exec adds its own timeout). Default 60.
    request_timeout: Optional[float] = None
    #: Retries of idempotent requests (GET, PUT, DELETE) on network errors and 502/503/504. Default 3.
    max_retries: Optional[int] = None
    #: First retry delay in seconds; doubles per retry, with jitter, capped at 5 s. Default 0.25.
    retry_delay: Optional[float] = None
    #: PEM CA bundle that verifies an ``https://`` server (instead of the system
    #: trust store); default ``OSB_CA_FILE``, else the system store.
    ca_file: Optional[str] = None

    def __repr__(self) -> str:
        key = "None" if self.api_key is None else "'***'"
        return (
            f"ConnectionConfig(api_url={self.api_url!r}, api_key={key}, request_timeout={self.request_timeout!r}, "
            f"max_retries={self.max_retries!r}, retry_delay={self.retry_delay!r}, ca_file={self.ca_file!r})"
        )


@dataclass(frozen=True)
class ResolvedConfig:
    api_url: str
    api_key: Optional[str]
    request_timeout: float
    max_retries: int
    retry_delay: float
    ca_file: Optional[str] = None

    def __repr__(self) -> str:
        key = "None" if self.api_key is None else "'***'"
        return (
            f"ResolvedConfig(api_url={self.api_url!r}, api_key={key}, request_timeout={self.request_timeout!r}, "
            f"max_retries={self.max_retries!r}, retry_delay={self.retry_delay!r}, ca_file={self.ca_file!r})"
        )


def _non_empty(value: Optional[str]) -> Optional[str]:
    return value if value else None


def _non_negative(name: str, value: Optional[float], default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{name} must be a non-negative number")
    return float(value)


def resolve_config(
    config: Optional[ConnectionConfig] = None,
    *,
    api_url: Optional[str] = None,
    api_key: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
) -> ResolvedConfig:
    """Resolves explicit arguments (``api_url``/``api_key`` win over ``config``) against ``env`` (default ``os.environ``)."""
    cfg = config or ConnectionConfig()
    environ = os.environ if env is None else env
    url = (
        _non_empty(api_url)
        or _non_empty(cfg.api_url)
        or _non_empty(environ.get("OPENSANDBOX_API_URL"))
        or DEFAULT_API_URL
    )
    try:
        parts = urlsplit(url)
        scheme, netloc, username, password = parts.scheme, parts.netloc, parts.username, parts.password
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigurationError(f"api_url is not a valid URL: {url!r}") from None
    if username is not None or password is not None:
        raise ConfigurationError("api_url must not contain credentials; use api_key")
    if scheme not in ("http", "https") or not netloc:
        raise ConfigurationError(f"api_url must be an http:// or https:// URL, got {url!r}")
    return ResolvedConfig(
        api_url=url.rstrip("/"),
        api_key=_non_empty(api_key) or _non_empty(cfg.api_key) or _non_empty(environ.get("OPENSANDBOX_API_KEY")),
        request_timeout=_non_negative("request_timeout", cfg.request_timeout, DEFAULT_REQUEST_TIMEOUT),
        max_retries=int(_non_negative("max_retries", cfg.max_retries, DEFAULT_MAX_RETRIES)),
        retry_delay=_non_negative("retry_delay", cfg.retry_delay, DEFAULT_RETRY_DELAY),
        ca_file=_non_empty(cfg.ca_file) or _non_empty(environ.get("OSB_CA_FILE")),
    )
