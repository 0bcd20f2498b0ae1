"""The one place that talks HTTP (``urllib.request``, standard library only).

- JSON in, JSON out; ``X-API-Key`` on every request.
- Retries: only idempotent methods (GET, PUT, DELETE), only on network errors,
  timeouts and 502/503/504, at most ``max_retries`` times with exponential
  backoff and jitter. POST and PATCH are never retried (a create or an exec
  must not run twice).
- Errors: see errors.py. A request's body never appears in an error, a log
  record, ``repr()`` or ``str()`` of the request; values marked sensitive are
  scrubbed from any text the server echoes back.

Stateless and thread safe: every call builds its own connection.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import ssl
import time
import urllib.error
import urllib.request
from typing import Any, Iterable, Optional, Tuple
from urllib.parse import quote

from ._config import ConnectionConfig, ResolvedConfig, resolve_config
from .errors import ConfigurationError, ConnectionError, OpenSandboxError, error_for_status

__all__ = ["ApiRequest", "HttpClient", "seg", "USER_AGENT"]

logger = logging.getLogger("opensandbox")

USER_AGENT = "opensandbox-python/0.1.0"
_IDEMPOTENT = frozenset({"GET", "PUT", "DELETE"})
_RETRYABLE_STATUS = frozenset({502, 503, 504})
_MAX_BACKOFF = 5.0
_REDACTED = "[REDACTED]"


class ApiRequest:
    """One API request. Its body is private: ``repr``/``str`` show method and path only."""

    __slots__ = ("method", "path", "extra_timeout", "_body", "_sensitive")

    def __init__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        sensitive: Iterable[str] = (),
        extra_timeout: float = 0.0,
    ) -> None:
        self.method = method
        self.path = path
        self.extra_timeout = extra_timeout
        self._body = body
        self._sensitive = tuple(s for s in sensitive if isinstance(s, str) and s)

    @property
    def has_body(self) -> bool:
        return self._body is not None

    def serialize_body(self) -> Optional[bytes]:
        """The JSON body; only the transport calls this."""
        if self._body is None:
            return None
        return json.dumps(self._body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def redact(self, text: str) -> str:
        """Replaces every sensitive value (raw and JSON-escaped) in ``text``."""
        for value in self._sensitive:
            for needle in {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}:
                if needle:
                    text = text.replace(needle, _REDACTED)
        return text

    def __repr__(self) -> str:
        return f"ApiRequest({self.method} {self.path}{' (body redacted)' if self.has_body else ''})"

    __str__ = __repr__

    def __getstate__(self) -> None:
        raise TypeError("ApiRequest cannot be pickled")


def seg(value: str) -> str:
    """Encodes one path segment (a project name, secret name, sandbox id...)."""
    if not isinstance(value, str) or not value:
        # The value is not echoed: a misplaced argument could be a secret.
        got = "an empty str" if value == "" else type(value).__name__
        raise ConfigurationError(f"expected a non-empty string identifier, got {got}")
    return quote(value, safe="")


def _server_message(status: int, reason: str, body: bytes) -> str:
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            return parsed["error"]
    except ValueError:
        pass
    short = text.strip()[:200]
    if short:
        return f"HTTP {status}: {short}"
    return f"HTTP {status} {reason}".rstrip()


def _describe_network_error(err: BaseException, timeout: float) -> str:
    reason: Any = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"request timed out after {timeout:g} s"
    if isinstance(reason, OSError) and reason.strerror:
        return f"connection failed: {reason.strerror}"
    return f"connection failed: {type(reason).__name__}: {reason}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow redirects: a redirect would resend the body (a secret) elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _opener_for(config: ResolvedConfig) -> urllib.request.OpenerDirector:
    """The default opener (system trust store), or one that trusts only ``config.ca_file``.

    TLS 1.2 is the minimum either way (the default context already verifies
    the certificate and the host name).
    """
    if config.ca_file is None or not config.api_url.startswith("https:"):
        return _OPENER
    try:
        context = ssl.create_default_context(cafile=config.ca_file)
    except (OSError, ssl.SSLError) as err:
        raise ConfigurationError(f"ca_file: cannot load PEM CA certificates from {config.ca_file!r}: {err}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=context))


class HttpClient:
    """Sends requests to one OpenSandbox server."""

    def __init__(
        self,
        config: Optional[ConnectionConfig] = None,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
    ) -> None:
        self.config: ResolvedConfig = resolve_config(config, api_url=api_url, api_key=api_key)
        self._opener = _opener_for(self.config)

    def send(self, req: ApiRequest) -> Any:
        """Sends ``req``, retrying when allowed; returns the parsed JSON body (None when empty)."""
        if self.config.api_key is None:
            raise ConfigurationError(
                "no API key: pass api_key or set OPENSANDBOX_API_KEY", 0, req.method, req.path
            )
        attempts = self.config.max_retries + 1 if req.method in _IDEMPOTENT else 1
        last: Optional[OpenSandboxError] = None
        for attempt in range(attempts):
            if attempt > 0:
                ceiling = min(_MAX_BACKOFF, self.config.retry_delay * (2 ** (attempt - 1)))
                time.sleep(ceiling / 2 + random.random() * ceiling / 2)
            ok, value, error, retryable = self._attempt(req, self.config.api_key)
            if ok:
                return value
            last = error
            if not retryable:
                break
        assert last is not None
        raise last

    def open_stream(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        length: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> Any:
        """Starts a streamed request (files): ``body`` is a binary file object
        (sent in blocks, ``length`` bytes) or None. Returns the open response
        for the caller to read and close; a non-2xx status raises the mapped
        error. Never retried (a stream cannot be replayed)."""
        if self.config.api_key is None:
            raise ConfigurationError("no API key: pass api_key or set OPENSANDBOX_API_KEY", 0, method, path)
        headers = {"Accept": "application/octet-stream, application/json", "User-Agent": USER_AGENT,
                   "X-API-Key": self.config.api_key}
        if body is not None:
            headers["Content-Type"] = "application/octet-stream"
            headers["Content-Length"] = str(length if length is not None else 0)
        http_req = urllib.request.Request(self.config.api_url + path, data=body, headers=headers, method=method)
        limit = timeout if timeout is not None else self.config.request_timeout
        try:
            return self._opener.open(http_req, timeout=limit if limit and limit > 0 else None)
        except urllib.error.HTTPError as err:
            try:
                status, reason, data = err.code, err.reason or "", err.read(64 * 1024)
            except (OSError, http.client.HTTPException):
                status, reason, data = err.code, err.reason or "", b""
            finally:
                err.close()
            raise error_for_status(status, _server_message(status, reason, data), method, path) from None
        except (OSError, http.client.HTTPException) as err:
            raise ConnectionError(_describe_network_error(err, limit or 0), 0, method, path) from None

    def _attempt(self, req: ApiRequest, api_key: str) -> Tuple[bool, Any, Optional[OpenSandboxError], bool]:
        timeout = self.config.request_timeout + req.extra_timeout
        data = req.serialize_body()
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, "X-API-Key": api_key}
        if data is not None:
            headers["Content-Type"] = "application/json"
        http_req = urllib.request.Request(self.config.api_url + req.path, data=data, headers=headers, method=req.method)
        started = time.monotonic()

        def log(outcome: str) -> None:
            logger.debug("%s %s -> %s (%d ms)", req.method, req.path, outcome, (time.monotonic() - started) * 1000)

        status, reason, body = 0, "", b""
        network_error: Optional[str] = None
        try:
            with self._opener.open(http_req, timeout=timeout if timeout > 0 else None) as resp:
                status, reason, body = resp.status, resp.reason or "", resp.read()
        except urllib.error.HTTPError as err:
            try:
                status, reason, body = err.code, err.reason or "", err.read()
            except (OSError, http.client.HTTPException) as read_err:
                network_error = _describe_network_error(read_err, timeout)
            finally:
                err.close()
        except (OSError, http.client.HTTPException) as err:  # URLError is an OSError
            network_error = _describe_network_error(err, timeout)
        finally:
            del http_req, data  # nothing that held the body outlives the attempt

        if network_error is not None:
            message = req.redact(network_error)
            log(message)
            return False, None, ConnectionError(message, 0, req.method, req.path), True
        log(str(status))
        if 200 <= status < 300:
            if not body.strip():
                return True, None, None, False
            try:
                return True, json.loads(body.decode("utf-8")), None, False
            except ValueError:
                err = OpenSandboxError(f"invalid JSON in response (HTTP {status})", status, req.method, req.path)
                return False, None, err, False
        if 300 <= status < 400:
            err = OpenSandboxError(f"unexpected redirect (HTTP {status}); check api_url", status, req.method, req.path)
            return False, None, err, False
        message = req.redact(_server_message(status, reason, body))
        return False, None, error_for_status(status, message, req.method, req.path), status in _RETRYABLE_STATUS
