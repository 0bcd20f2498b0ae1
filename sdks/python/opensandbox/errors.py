"""Errors raised by the SDK.

Every failure is an :class:`OpenSandboxError`. ``status`` is the HTTP status the
server answered with, or 0 when no response was received (network failure,
timeout, bad configuration). ``str(error)`` is the server's own
``{"error": "..."}`` text when it sent one.

Contract: no error ever carries a secret value. Request bodies are never copied
into errors, errors are raised ``from None`` so no lower-level exception that
saw the request is chained to them, and any text a server echoes back that
contains a value the failed request was sending is replaced by ``[REDACTED]``.
"""

from __future__ import annotations

import builtins
from typing import Dict, Type

__all__ = [
    "OpenSandboxError",
    "BadRequestError",
    "AuthenticationError",
    "NotFoundError",
    "ConflictError",
    "PayloadTooLargeError",
    "ServiceUnavailableError",
    "ConnectionError",
    "ConfigurationError",
    "error_for_status",
]


class OpenSandboxError(Exception):
    """Base class of every error the SDK raises."""

    def __init__(self, message: str, status: int = 0, method: str = "", path: str = "") -> None:
        super().__init__(message)
        #: The server's message (or the SDK's, when there was no response).
        self.message = message
        #: HTTP status code, or 0 when no HTTP response was received.
        self.status = status
        #: HTTP method of the failed request ("" for configuration errors).
        self.method = method
        #: Path of the failed request, e.g. ``/api/projects/demo`` (never a body).
        self.path = path

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, message={self.message!r}, "
            f"method={self.method!r}, path={self.path!r})"
        )

    def __reduce__(self):  # keep pickling (e.g. across processes) working
        return (type(self), (self.message, self.status, self.method, self.path))


class BadRequestError(OpenSandboxError):
    """400: the server rejected the input; the message names the field."""


class AuthenticationError(OpenSandboxError):
    """401: missing, wrong or expired API key; 403: the key's scope does not
    cover the call (the message names the scope needed)."""


class NotFoundError(OpenSandboxError):
    """404: no such project, secret group, secret or sandbox (in your org)."""


class ConflictError(OpenSandboxError):
    """409: the name is already taken."""


class PayloadTooLargeError(OpenSandboxError):
    """413: the request body is too large (e.g. a secret value over 64 KiB)."""


class ServiceUnavailableError(OpenSandboxError):
    """503: the service cannot serve the request now (e.g. no healthy worker)."""


class ConnectionError(OpenSandboxError, builtins.ConnectionError):  # noqa: A001 - mirrors requests.ConnectionError
    """status 0: no HTTP response (connection refused, DNS failure, timeout)."""


class ConfigurationError(OpenSandboxError, ValueError):
    """status 0: the SDK was given unusable configuration or arguments."""


_BY_STATUS: Dict[int, Type[OpenSandboxError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    503: ServiceUnavailableError,
}


def error_for_status(status: int, message: str, method: str, path: str) -> OpenSandboxError:
    """Returns the error class matching an HTTP status, instantiated."""
    return _BY_STATUS.get(status, OpenSandboxError)(message, status, method, path)
