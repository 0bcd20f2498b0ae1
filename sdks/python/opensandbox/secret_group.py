"""Org-level secret groups: ``/api/secret-groups``.

A project attaches groups by name (``secret_groups=[...]`` on the project).
For a sandbox, the attached groups resolve in order, then the project's own
secrets; the later wins on a name collision.
"""

from __future__ import annotations

import asyncio
from typing import Any, List, Optional, Sequence

from ._config import ConnectionConfig
from ._http import ApiRequest, HttpClient, seg
from ._secrets import delete_secret_at, list_secrets_at, set_secret_at
from .models import SecretGroupInfo, SecretInfo

__all__ = ["SecretGroup", "AsyncSecretGroup"]


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
        client = HttpClient(config, api_url=api_url, api_key=api_key)
        return SecretGroupInfo.from_json(client.send(ApiRequest("POST", "/api/secret-groups", {"name": name})))

    @staticmethod
    def list(
        *, api_url: Optional[str] = None, api_key: Optional[str] = None, config: Optional[ConnectionConfig] = None
    ) -> List[SecretGroupInfo]:
        """``GET /api/secret-groups``."""
        data = HttpClient(config, api_url=api_url, api_key=api_key).send(ApiRequest("GET", "/api/secret-groups"))
        return [SecretGroupInfo.from_json(x) for x in data] if isinstance(data, list) else []

    @staticmethod
    def get(
        id_or_name: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> SecretGroupInfo:
        """``GET /api/secret-groups/{id_or_name}``."""
        client = HttpClient(config, api_url=api_url, api_key=api_key)
        return SecretGroupInfo.from_json(client.send(ApiRequest("GET", f"/api/secret-groups/{seg(id_or_name)}")))

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
        client = HttpClient(config, api_url=api_url, api_key=api_key)
        return SecretGroupInfo.from_json(
            client.send(ApiRequest("PATCH", f"/api/secret-groups/{seg(id_or_name)}", {"name": name}))
        )

    @staticmethod
    def delete(
        id_or_name: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> None:
        """``DELETE /api/secret-groups/{id_or_name}``: removes the group and its secrets."""
        HttpClient(config, api_url=api_url, api_key=api_key).send(
            ApiRequest("DELETE", f"/api/secret-groups/{seg(id_or_name)}")
        )

    @staticmethod
    def set_secret(
        group: str,
        name: str,
        value: str,
        *,
        allowed_hosts: Optional[Sequence[str]] = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> Optional[SecretInfo]:
        """``PUT /api/secret-groups/{group}/secrets/{name}``: creates or replaces a secret."""
        client = HttpClient(config, api_url=api_url, api_key=api_key)
        return set_secret_at(client, f"/api/secret-groups/{seg(group)}", name, value, allowed_hosts)

    @staticmethod
    def list_secrets(
        group: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> List[SecretInfo]:
        """``GET /api/secret-groups/{group}/secrets``: names and metadata, never values."""
        return list_secrets_at(HttpClient(config, api_url=api_url, api_key=api_key), f"/api/secret-groups/{seg(group)}")

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
        delete_secret_at(
            HttpClient(config, api_url=api_url, api_key=api_key), f"/api/secret-groups/{seg(group)}", name
        )


class AsyncSecretGroup:
    """:class:`SecretGroup` as coroutines (same arguments), via :func:`asyncio.to_thread`."""

    @staticmethod
    async def create(name: str, **kwargs: Any) -> SecretGroupInfo:
        return await asyncio.to_thread(SecretGroup.create, name, **kwargs)

    @staticmethod
    async def list(**kwargs: Any) -> List[SecretGroupInfo]:
        return await asyncio.to_thread(SecretGroup.list, **kwargs)

    @staticmethod
    async def get(id_or_name: str, **kwargs: Any) -> SecretGroupInfo:
        return await asyncio.to_thread(SecretGroup.get, id_or_name, **kwargs)

    @staticmethod
    async def update(id_or_name: str, **kwargs: Any) -> SecretGroupInfo:
        return await asyncio.to_thread(SecretGroup.update, id_or_name, **kwargs)

    @staticmethod
    async def delete(id_or_name: str, **kwargs: Any) -> None:
        await asyncio.to_thread(SecretGroup.delete, id_or_name, **kwargs)

    @staticmethod
    async def set_secret(group: str, name: str, value: str, **kwargs: Any) -> Optional[SecretInfo]:
        return await asyncio.to_thread(SecretGroup.set_secret, group, name, value, **kwargs)

    @staticmethod
    async def list_secrets(group: str, **kwargs: Any) -> List[SecretInfo]:
        return await asyncio.to_thread(SecretGroup.list_secrets, group, **kwargs)

    @staticmethod
    async def delete_secret(group: str, name: str, **kwargs: Any) -> None:
        await asyncio.to_thread(SecretGroup.delete_secret, group, name, **kwargs)
