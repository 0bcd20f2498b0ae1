"""Projects and their secrets: ``/api/projects``.

Every method is a stateless static method. The keyword arguments ``api_url``,
``api_key`` and ``config`` (a :class:`ConnectionConfig`) choose the server;
see the package docs for their defaults. :class:`AsyncProject` has the same
methods as coroutines.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Sequence

from ._config import ConnectionConfig
from ._http import ApiRequest, HttpClient, seg
from ._secrets import delete_secret_at, list_secrets_at, set_secret_at
from .models import ProjectInfo, SecretInfo

__all__ = ["Project", "AsyncProject"]


def _project_body(
    name: Optional[str],
    template: Optional[str],
    cpu_count: Optional[int],
    memory_mb: Optional[int],
    timeout_sec: Optional[int],
    egress_allowlist: Optional[Sequence[str]],
    secret_groups: Optional[Sequence[str]],
) -> Dict[str, Any]:
    fields = {
        "name": name,
        "template": template,
        "cpuCount": cpu_count,
        "memoryMB": memory_mb,
        "timeoutSec": timeout_sec,
        "egressAllowlist": None if egress_allowlist is None else list(egress_allowlist),
        "secretGroups": None if secret_groups is None else list(secret_groups),
    }
    return {k: v for k, v in fields.items() if v is not None}


class Project:
    """Static methods over ``/api/projects``."""

    @staticmethod
    def create(
        name: str,
        *,
        template: Optional[str] = None,
        cpu_count: Optional[int] = None,
        memory_mb: Optional[int] = None,
        timeout_sec: Optional[int] = None,
        egress_allowlist: Optional[Sequence[str]] = None,
        secret_groups: Optional[Sequence[str]] = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> ProjectInfo:
        """``POST /api/projects``. Raises ConflictError (409) when the name is taken."""
        body = _project_body(name, template, cpu_count, memory_mb, timeout_sec, egress_allowlist, secret_groups)
        client = HttpClient(config, api_url=api_url, api_key=api_key)
        return ProjectInfo.from_json(client.send(ApiRequest("POST", "/api/projects", body)))

    @staticmethod
    def list(
        *, api_url: Optional[str] = None, api_key: Optional[str] = None, config: Optional[ConnectionConfig] = None
    ) -> List[ProjectInfo]:
        """``GET /api/projects``: every project of your org."""
        data = HttpClient(config, api_url=api_url, api_key=api_key).send(ApiRequest("GET", "/api/projects"))
        return [ProjectInfo.from_json(x) for x in data] if isinstance(data, list) else []

    @staticmethod
    def get(
        id_or_name: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> ProjectInfo:
        """``GET /api/projects/{id_or_name}``. Raises NotFoundError (404)."""
        client = HttpClient(config, api_url=api_url, api_key=api_key)
        return ProjectInfo.from_json(client.send(ApiRequest("GET", f"/api/projects/{seg(id_or_name)}")))

    @staticmethod
    def update(
        id_or_name: str,
        *,
        name: Optional[str] = None,
        template: Optional[str] = None,
        cpu_count: Optional[int] = None,
        memory_mb: Optional[int] = None,
        timeout_sec: Optional[int] = None,
        egress_allowlist: Optional[Sequence[str]] = None,
        secret_groups: Optional[Sequence[str]] = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> ProjectInfo:
        """``PATCH /api/projects/{id_or_name}``: a partial merge.

        Only the arguments you pass (not None) are sent; the rest keep their
        values. Pass ``egress_allowlist=[]`` to clear the allowlist.
        """
        body = _project_body(name, template, cpu_count, memory_mb, timeout_sec, egress_allowlist, secret_groups)
        client = HttpClient(config, api_url=api_url, api_key=api_key)
        return ProjectInfo.from_json(client.send(ApiRequest("PATCH", f"/api/projects/{seg(id_or_name)}", body)))

    @staticmethod
    def delete(
        id_or_name: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> None:
        """``DELETE /api/projects/{id_or_name}``: removes the project and its secrets."""
        HttpClient(config, api_url=api_url, api_key=api_key).send(
            ApiRequest("DELETE", f"/api/projects/{seg(id_or_name)}")
        )

    @staticmethod
    def set_secret(
        project: str,
        name: str,
        value: str,
        *,
        allowed_hosts: Optional[Sequence[str]] = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> Optional[SecretInfo]:
        """``PUT /api/projects/{project}/secrets/{name}``: creates or replaces a secret.

        Running sandboxes of the project keep their sealed token and start
        using the new value. The value never appears in an error or a log.
        """
        client = HttpClient(config, api_url=api_url, api_key=api_key)
        return set_secret_at(client, f"/api/projects/{seg(project)}", name, value, allowed_hosts)

    @staticmethod
    def list_secrets(
        project: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> List[SecretInfo]:
        """``GET /api/projects/{project}/secrets``: names and metadata, never values."""
        return list_secrets_at(HttpClient(config, api_url=api_url, api_key=api_key), f"/api/projects/{seg(project)}")

    @staticmethod
    def delete_secret(
        project: str,
        name: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> None:
        """``DELETE /api/projects/{project}/secrets/{name}``."""
        delete_secret_at(HttpClient(config, api_url=api_url, api_key=api_key), f"/api/projects/{seg(project)}", name)


class AsyncProject:
    """:class:`Project` as coroutines (same arguments), run in a worker thread
    with :func:`asyncio.to_thread` so the event loop never blocks."""

    @staticmethod
    async def create(name: str, **kwargs: Any) -> ProjectInfo:
        return await asyncio.to_thread(Project.create, name, **kwargs)

    @staticmethod
    async def list(**kwargs: Any) -> List[ProjectInfo]:
        return await asyncio.to_thread(Project.list, **kwargs)

    @staticmethod
    async def get(id_or_name: str, **kwargs: Any) -> ProjectInfo:
        return await asyncio.to_thread(Project.get, id_or_name, **kwargs)

    @staticmethod
    async def update(id_or_name: str, **kwargs: Any) -> ProjectInfo:
        return await asyncio.to_thread(Project.update, id_or_name, **kwargs)

    @staticmethod
    async def delete(id_or_name: str, **kwargs: Any) -> None:
        await asyncio.to_thread(Project.delete, id_or_name, **kwargs)

    @staticmethod
    async def set_secret(project: str, name: str, value: str, **kwargs: Any) -> Optional[SecretInfo]:
        return await asyncio.to_thread(Project.set_secret, project, name, value, **kwargs)

    @staticmethod
    async def list_secrets(project: str, **kwargs: Any) -> List[SecretInfo]:
        return await asyncio.to_thread(Project.list_secrets, project, **kwargs)

    @staticmethod
    async def delete_secret(project: str, name: str, **kwargs: Any) -> None:
        await asyncio.to_thread(Project.delete_secret, project, name, **kwargs)
