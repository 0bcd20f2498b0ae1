"""Projects and their secrets: ``/api/projects``.

Every method is a stateless static method. The keyword arguments ``api_url``,
``api_key`` and ``config`` (a :class:`ConnectionConfig`) choose the server;
see the package docs for their defaults. :class:`AsyncProject` has the same
methods as coroutines.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Sequence

from ._collection import AsyncCollection, Collection, client
from ._config import ConnectionConfig
from .models import ProjectInfo, SecretInfo

__all__ = ["Project", "AsyncProject"]

_PROJECTS = Collection("/api/projects", ProjectInfo.from_json)


def _project_body(
    name: Optional[str],
    template: Optional[str],
    cpu_count: Optional[int],
    memory_mb: Optional[int],
    timeout_sec: Optional[int],
    egress_allowlist: Optional[Sequence[str]],
    secret_groups: Optional[Sequence[str]],
    disk_mb: Optional[int] = None,
) -> Dict[str, Any]:
    fields = {
        "name": name,
        "template": template,
        "cpuCount": cpu_count,
        "memoryMB": memory_mb,
        "diskMB": disk_mb,
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
        disk_mb: Optional[int] = None,
        timeout_sec: Optional[int] = None,
        egress_allowlist: Optional[Sequence[str]] = None,
        secret_groups: Optional[Sequence[str]] = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> ProjectInfo:
        """``POST /api/projects``. Raises ConflictError (409) when the name is taken."""
        body = _project_body(
            name, template, cpu_count, memory_mb, timeout_sec, egress_allowlist, secret_groups, disk_mb
        )
        return _PROJECTS.create(client(config, api_url, api_key), body)

    @staticmethod
    def list(
        *, api_url: Optional[str] = None, api_key: Optional[str] = None, config: Optional[ConnectionConfig] = None
    ) -> List[ProjectInfo]:
        """``GET /api/projects``: every project of your org."""
        return _PROJECTS.list(client(config, api_url, api_key))

    @staticmethod
    def get(
        id_or_name: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> ProjectInfo:
        """``GET /api/projects/{id_or_name}``. Raises NotFoundError (404)."""
        return _PROJECTS.get(client(config, api_url, api_key), id_or_name)

    @staticmethod
    def update(
        id_or_name: str,
        *,
        name: Optional[str] = None,
        template: Optional[str] = None,
        cpu_count: Optional[int] = None,
        memory_mb: Optional[int] = None,
        disk_mb: Optional[int] = None,
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
        body = _project_body(
            name, template, cpu_count, memory_mb, timeout_sec, egress_allowlist, secret_groups, disk_mb
        )
        return _PROJECTS.update(client(config, api_url, api_key), id_or_name, body)

    @staticmethod
    def delete(
        id_or_name: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> None:
        """``DELETE /api/projects/{id_or_name}``: removes the project and its secrets."""
        _PROJECTS.delete(client(config, api_url, api_key), id_or_name)

    @staticmethod
    def set_secret(
        project: str,
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
        """``PUT /api/projects/{project}/secrets/{name}``: creates or replaces a secret.

        ``value`` for kind "value" (the default); for kind "hmac", "aws-sigv4"
        or "oauth2-refresh" pass ``material`` (a dict, docs/secrets.md) instead.
        ``allowed_requests`` narrows the requests that may use it (dicts
        ``{"host", "methods", "pathPrefix"}`` or "POST api.example.com/v1/x").
        Running sandboxes of the project keep their sealed token and start
        using the new value. The value never appears in an error or a log.
        """
        return _PROJECTS.set_secret(
            client(config, api_url, api_key),
            project,
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
        project: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> List[SecretInfo]:
        """``GET /api/projects/{project}/secrets``: names and metadata, never values."""
        return _PROJECTS.list_secrets(client(config, api_url, api_key), project)

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
        _PROJECTS.delete_secret(client(config, api_url, api_key), project, name)


class AsyncProject(AsyncCollection[ProjectInfo]):
    """:class:`Project` as coroutines (same arguments), run in a worker thread
    with :func:`asyncio.to_thread` so the event loop never blocks.

    ``create``, ``list``, ``get``, ``update`` and ``delete`` come from the
    shared base; the secret methods keep their ``project`` argument name here.
    """

    _sync = Project

    @staticmethod
    async def set_secret(project: str, name: str, value: Optional[str] = None, **kwargs: Any) -> Optional[SecretInfo]:
        return await asyncio.to_thread(Project.set_secret, project, name, value, **kwargs)

    @staticmethod
    async def list_secrets(project: str, **kwargs: Any) -> List[SecretInfo]:
        return await asyncio.to_thread(Project.list_secrets, project, **kwargs)

    @staticmethod
    async def delete_secret(project: str, name: str, **kwargs: Any) -> None:
        await asyncio.to_thread(Project.delete_secret, project, name, **kwargs)
