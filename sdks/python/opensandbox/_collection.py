"""What projects and secret groups share: a REST collection (``/api/projects``,
``/api/secret-groups``) whose items each hold secrets (``{item}/secrets/{NAME}``).

:class:`Project` and :class:`SecretGroup` keep their own public signatures and
docstrings (parameter names differ: ``project`` / ``group``) and delegate here,
so the routes and the secret handling exist once.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, ClassVar, Dict, Generic, List, Optional, Sequence, TypeVar

from ._config import ConnectionConfig
from ._http import ApiRequest, HttpClient, seg
from ._secrets import delete_secret_at, list_secrets_at, set_secret_at
from .models import SecretInfo

InfoT = TypeVar("InfoT")


def client(config: Optional[ConnectionConfig], api_url: Optional[str], api_key: Optional[str]) -> HttpClient:
    return HttpClient(config, api_url=api_url, api_key=api_key)


class Collection(Generic[InfoT]):
    """The routes of one collection; every call takes the client to send with."""

    def __init__(self, prefix: str, parse: Callable[[Any], InfoT]) -> None:
        self.prefix = prefix
        self._parse = parse

    def item(self, id_or_name: str) -> str:
        return f"{self.prefix}/{seg(id_or_name)}"

    def create(self, http: HttpClient, body: Dict[str, Any]) -> InfoT:
        return self._parse(http.send(ApiRequest("POST", self.prefix, body)))

    def list(self, http: HttpClient) -> List[InfoT]:
        data = http.send(ApiRequest("GET", self.prefix))
        return [self._parse(x) for x in data] if isinstance(data, list) else []

    def get(self, http: HttpClient, id_or_name: str) -> InfoT:
        return self._parse(http.send(ApiRequest("GET", self.item(id_or_name))))

    def update(self, http: HttpClient, id_or_name: str, body: Dict[str, Any]) -> InfoT:
        return self._parse(http.send(ApiRequest("PATCH", self.item(id_or_name), body)))

    def delete(self, http: HttpClient, id_or_name: str) -> None:
        http.send(ApiRequest("DELETE", self.item(id_or_name)))

    def set_secret(
        self,
        http: HttpClient,
        owner: str,
        name: str,
        value: Optional[str],
        allowed_hosts: Optional[Sequence[str]],
        **kinds: Any,
    ) -> Optional[SecretInfo]:
        return set_secret_at(http, self.item(owner), name, value, allowed_hosts, **kinds)

    def list_secrets(self, http: HttpClient, owner: str) -> List[SecretInfo]:
        return list_secrets_at(http, self.item(owner))

    def delete_secret(self, http: HttpClient, owner: str, name: str) -> None:
        delete_secret_at(http, self.item(owner), name)


class AsyncCollection(Generic[InfoT]):
    """Coroutine versions of the collection methods whose arguments are named
    the same for projects and groups; ``_sync`` is the class they run, in a
    worker thread (:func:`asyncio.to_thread`) so the event loop never blocks."""

    _sync: ClassVar[Any]

    @classmethod
    async def create(cls, name: str, **kwargs: Any) -> InfoT:
        return await asyncio.to_thread(cls._sync.create, name, **kwargs)  # type: ignore[no-any-return]

    @classmethod
    async def list(cls, **kwargs: Any) -> List[InfoT]:
        return await asyncio.to_thread(cls._sync.list, **kwargs)  # type: ignore[no-any-return]

    @classmethod
    async def get(cls, id_or_name: str, **kwargs: Any) -> InfoT:
        return await asyncio.to_thread(cls._sync.get, id_or_name, **kwargs)  # type: ignore[no-any-return]

    @classmethod
    async def update(cls, id_or_name: str, **kwargs: Any) -> InfoT:
        return await asyncio.to_thread(cls._sync.update, id_or_name, **kwargs)  # type: ignore[no-any-return]

    @classmethod
    async def delete(cls, id_or_name: str, **kwargs: Any) -> None:
        await asyncio.to_thread(cls._sync.delete, id_or_name, **kwargs)
