"""API keys of your org: ``/api/api-keys``.

A new key is returned once, by :meth:`ApiKey.create` (the server stores only
its SHA-256): keep it in a secret manager. Every key has a scope: ``"sandbox"``
(the server's default: create, use and delete sandboxes, read projects) or
``"admin"`` (everything, including secrets and keys), and optionally an
expiry. Listings carry ids, names, scopes and dates, never keys. Deleting a
key revokes it at once; the org's last unexpired admin key cannot be deleted
(:class:`ConflictError`), so nobody is locked out.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

from ._collection import Collection, client
from ._config import ConnectionConfig
from .models import ApiKeyInfo

__all__ = ["ApiKey", "AsyncApiKey"]

_KEYS = Collection("/api/api-keys", ApiKeyInfo.from_json)


class ApiKey:
    """Static methods over ``/api/api-keys``."""

    @staticmethod
    def create(
        name: str,
        *,
        scope: Optional[str] = None,
        expires_in: Optional[str] = None,
        expires_at: Optional[str] = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> ApiKeyInfo:
        """``POST /api/api-keys``: a new key for the org; ``.key`` holds it, this once.

        ``scope``: ``"sandbox"`` (server default) or ``"admin"``. ``expires_in``
        (e.g. ``"30d"``, ``"12h"``) or ``expires_at`` (RFC 3339), not both.
        Never retried (a retry could create a second key).
        """
        body: Dict[str, Any] = {"name": name}
        if scope is not None:
            body["scope"] = scope
        if expires_in is not None:
            body["expiresIn"] = expires_in
        if expires_at is not None:
            body["expiresAt"] = expires_at
        return _KEYS.create(client(config, api_url, api_key), body)

    @staticmethod
    def list(
        *, api_url: Optional[str] = None, api_key: Optional[str] = None, config: Optional[ConnectionConfig] = None
    ) -> List[ApiKeyInfo]:
        """``GET /api/api-keys``: ids, names, scopes and dates, oldest first (``.key`` is empty)."""
        return _KEYS.list(client(config, api_url, api_key))

    @staticmethod
    def delete(
        key_id: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> None:
        """``DELETE /api/api-keys/{key_id}``: revokes the key at once.

        Raises NotFoundError for an unknown id, ConflictError for the org's last unexpired admin key.
        """
        _KEYS.delete(client(config, api_url, api_key), key_id)


class AsyncApiKey:
    """:class:`ApiKey` as coroutines (same arguments), via :func:`asyncio.to_thread`."""

    @staticmethod
    async def create(name: str, **kwargs: Any) -> ApiKeyInfo:
        return await asyncio.to_thread(ApiKey.create, name, **kwargs)

    @staticmethod
    async def list(**kwargs: Any) -> List[ApiKeyInfo]:
        return await asyncio.to_thread(ApiKey.list, **kwargs)

    @staticmethod
    async def delete(key_id: str, **kwargs: Any) -> None:
        await asyncio.to_thread(ApiKey.delete, key_id, **kwargs)
