"""Image templates of your org: ``/api/templates`` (docs/templates.md).

:meth:`Template.import_` uploads an OCI archive or ``docker save`` tarball,
streamed from a path or a binary file object (never held in memory); the
server verifies every digest and answers with the template's name and image
digest. Then ``Sandbox.create(template="NAME")`` runs on it. Import and
delete need an admin key; list and get also work with a sandbox-scope key.
Errors: BadRequestError naming what is wrong with the image (the blob or
entry), PayloadTooLargeError beyond the server's ``--max-template-bytes``,
ConflictError for a taken name (import) or a template in use (delete).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
from dataclasses import dataclass
from typing import Any, BinaryIO, List, Optional, Union
from urllib.parse import quote

from ._collection import Collection, client
from ._config import ConnectionConfig
from .errors import ConfigurationError
from .files import _remaining

__all__ = ["TemplateInfo", "Template", "AsyncTemplate"]

# Uploading and verifying a large image lasts long: this bounds each socket
# read/write, not the whole transfer.
_TRANSFER_TIMEOUT = 1800.0


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    digest: str  # the image config digest, "sha256:<hex>"
    size: int  # bytes of the stored tarball
    created_at: str

    @classmethod
    def from_json(cls, d: Any) -> "TemplateInfo":
        d = d if isinstance(d, dict) else {}
        return cls(name=str(d.get("name", "")), digest=str(d.get("digest", "")), size=int(d.get("size", 0) or 0),
                   created_at=str(d.get("createdAt", "")))


_TEMPLATES = Collection("/api/templates", TemplateInfo.from_json)


class Template:
    """Static methods over ``/api/templates``."""

    @staticmethod
    def import_(
        name: str,
        tarball: Union[str, "os.PathLike[str]", BinaryIO],
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> TemplateInfo:
        """``POST /api/templates?name=NAME`` with the tarball as the body (streamed). Never retried."""
        if not isinstance(name, str) or not name:
            raise ConfigurationError("templates.import_: name must be a non-empty str")
        http = client(config, api_url, api_key)
        path = f"/api/templates?name={quote(name, safe='')}"

        def send(body: BinaryIO, length: int) -> TemplateInfo:
            resp = http.open_stream("POST", path, body=body, length=length, timeout=_TRANSFER_TIMEOUT)
            try:
                text = resp.read()
            finally:
                resp.close()
            return TemplateInfo.from_json(json.loads(text.decode("utf-8")) if text.strip() else {})

        if isinstance(tarball, (str, os.PathLike)):
            with open(os.fspath(tarball), "rb") as f:
                return send(f, os.fstat(f.fileno()).st_size)
        if hasattr(tarball, "read"):
            return send(tarball, _remaining(tarball, "templates.import_"))
        raise ConfigurationError("templates.import_: tarball must be a path or a binary file object")

    @staticmethod
    def list(
        *, api_url: Optional[str] = None, api_key: Optional[str] = None, config: Optional[ConnectionConfig] = None
    ) -> List[TemplateInfo]:
        """``GET /api/templates``: the org's templates, by name."""
        return _TEMPLATES.list(client(config, api_url, api_key))

    @staticmethod
    def get(
        name: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> TemplateInfo:
        """``GET /api/templates/{name}``; NotFoundError if the org has none of that name."""
        return _TEMPLATES.get(client(config, api_url, api_key), name)

    @staticmethod
    def delete(
        name: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[ConnectionConfig] = None,
    ) -> None:
        """``DELETE /api/templates/{name}``; ConflictError while a sandbox uses it."""
        _TEMPLATES.delete(client(config, api_url, api_key), name)


# ``Template.import_`` under the name the other SDKs use (``import`` is a keyword).
setattr(Template, "import", Template.import_)


class AsyncTemplate:
    """:class:`Template` as coroutines (same arguments), via :func:`asyncio.to_thread`."""

    @staticmethod
    async def import_(name: str, tarball: Union[str, "os.PathLike[str]", BinaryIO], **kwargs: Any) -> TemplateInfo:
        return await asyncio.to_thread(Template.import_, name, tarball, **kwargs)

    @staticmethod
    async def list(**kwargs: Any) -> List[TemplateInfo]:
        return await asyncio.to_thread(Template.list, **kwargs)

    @staticmethod
    async def get(name: str, **kwargs: Any) -> TemplateInfo:
        return await asyncio.to_thread(Template.get, name, **kwargs)

    @staticmethod
    async def delete(name: str, **kwargs: Any) -> None:
        await asyncio.to_thread(Template.delete, name, **kwargs)
