"""Org-level secret groups: ``/api/secret-groups``.

A project attaches groups by name (``secret_groups=[...]`` on the project).
For a sandbox, the attached groups resolve in order, then the project's own
secrets; the later wins on a name collision.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Sequence

from ._collection import AsyncCollection, Collection, client
from ._config import ConnectionConfig
from .models import SecretGroupInfo, SecretInfo

__all__ = ["SecretGroup", "AsyncSecretGroup"]

_GROUPS = Collection("/api/secret-groups", SecretGroupInfo.from_json)


class SecretGroup:
    """Static methods over ``/api/secret-groups``."""

    @staticmethod
    def create(
        name: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> SecretGroupInfo:
        """``POST /api/secret-groups``. Raises ConflictError (409) when the name is taken."""
        return _GROUPS.create(client(config, api_url, api_key), {"name": name})

    @staticmethod
    def list(
        *, api_url: Optional[str] = None, api_key: Optional[str] = None, config: Optional[ConnectionConfig] = None
    ) -> List[SecretGroupInfo]:
        """``GET /api/secret-groups``."""
        return _GROUPS.list(client(config, api_url, api_key))

    @staticmethod
    def get(
        id_or_name: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> SecretGroupInfo:
        """``GET /api/secret-groups/{id_or_name}``."""
        return _GROUPS.get(client(config, api_url, api_key), id_or_name)

    @staticmethod
    def update(
        id_or_name: str,
        *,
        name: str,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> SecretGroupInfo:
        """``PATCH /api/secret-groups/{id_or_name}``: renames the group (attached projects follow it)."""
        return _GROUPS.update(client(config, api_url, api_key), id_or_name, {"name": name})

    @staticmethod
    def delete(
        id_or_name: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> None:
        """``DELETE /api/secret-groups/{id_or_name}``: removes the group and its secrets."""
        _GROUPS.delete(client(config, api_url, api_key), id_or_name)

    @staticmethod
    def set_secret(
        group: str,
        name: str,
        value: Optional[str] = None,
        *,
        allowed_hosts: Optional[Sequence[str]] = None,
        kind: Optional[str] = None,
        material: Optional[Dict[str, Any]] = None,
        allowed_requests: Optional[Sequence[Any]] = None,
        on_disallowed_request: Optional[str] = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> Optional[SecretInfo]:
        """``PUT /api/secret-groups/{group}/secrets/{name}``: creates or replaces a secret."""
        return _GROUPS.set_secret(
            client(config, api_url, api_key),
            group,
            name,
            value,
            allowed_hosts,
            kind=kind,
            material=material,
            allowed_requests=allowed_requests,
            on_disallowed_request=on_disallowed_request,
        )

    @staticmethod
    def list_secrets(
        group: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> List[SecretInfo]:
        """``GET /api/secret-groups/{group}/secrets``: names and metadata, never values."""
        return _GROUPS.list_secrets(client(config, api_url, api_key), group)

    @staticmethod
    def delete_secret(
        group: str,
        name: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> None:
        """``DELETE /api/secret-groups/{group}/secrets/{name}``."""
        _GROUPS.delete_secret(client(config, api_url, api_key), group, name)


class AsyncSecretGroup(AsyncCollection[SecretGroupInfo]):
    """:class:`SecretGroup` as coroutines (same arguments), via :func:`asyncio.to_thread`.

    ``create``, ``list``, ``get``, ``update`` and ``delete`` come from the
    shared base; the secret methods keep their ``group`` argument name here.
    """

    _sync = SecretGroup

    @staticmethod
    async def set_secret(group: str, name: str, value: Optional[str] = None, **kwargs: Any) -> Optional[SecretInfo]:
        return await asyncio.to_thread(SecretGroup.set_secret, group, name, value, **kwargs)

    @staticmethod
    async def list_secrets(group: str, **kwargs: Any) -> List[SecretInfo]:
        return await asyncio.to_thread(SecretGroup.list_secrets, group, **kwargs)

    @staticmethod
    async def delete_secret(group: str, name: str, **kwargs: Any) -> None:
        await asyncio.to_thread(SecretGroup.delete_secret, group, name, **kwargs)
