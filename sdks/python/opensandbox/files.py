"""Files inside a sandbox: ``sandbox.files`` (``/api/sandboxes/{id}/files``).

Paths are resolved inside the sandbox, as the sandbox user; a relative path
is taken from ``/home/sandbox``. Uploads and downloads stream: large files
never sit in memory (``write`` accepts a binary file object, ``read_to``
writes into one), and an upload that fails leaves no partial file behind.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Union
from urllib.parse import quote

from ._http import ApiRequest, HttpClient, seg
from .errors import ConfigurationError, OpenSandboxError

__all__ = ["FileEntry", "SandboxFiles"]

_CHUNK = 256 * 1024
# Transfers of big files last long: this bounds each socket read/write, not
# the whole transfer.
_TRANSFER_TIMEOUT = 600.0


@dataclass(frozen=True)
class FileEntry:
    """One listing entry: ``type`` is file, dir, symlink, fifo, socket, char-device, block-device or other."""

    name: str
    type: str
    size: int
    mode: str  # octal permission bits, e.g. "0644"
    mtime: str  # RFC 3339

    @classmethod
    def from_json(cls, d: Any) -> "FileEntry":
        d = d if isinstance(d, dict) else {}
        return cls(name=str(d.get("name", "")), type=str(d.get("type", "")), size=int(d.get("size", 0) or 0),
                   mode=str(d.get("mode", "")), mtime=str(d.get("mtime", "")))


def _check_path(path: str) -> str:
    if not isinstance(path, str) or not path:
        raise ConfigurationError("files: path must be a non-empty str")
    return path


def _mode_text(mode: Optional[Union[int, str]]) -> Optional[str]:
    if mode is None:
        return None
    if isinstance(mode, bool):
        raise ConfigurationError("files: mode must be an int like 0o644 or a str like '644'")
    if isinstance(mode, int):
        if not 0 <= mode <= 0o7777:
            raise ConfigurationError("files: mode must be within 0o0000-0o7777")
        return format(mode, "o")
    if isinstance(mode, str) and mode and all(c in "01234567" for c in mode) and len(mode) <= 4:
        return mode
    raise ConfigurationError("files: mode must be an int like 0o644 or a str like '644'")


class SandboxFiles:
    """File operations on one sandbox."""

    def __init__(self, sandbox_id: str, client: HttpClient) -> None:
        self._id = sandbox_id
        self._client = client

    def _url(self, suffix: str, path: str, extra: str = "") -> str:
        return f"/api/sandboxes/{seg(self._id)}/files{suffix}?path={quote(_check_path(path), safe='')}{extra}"

    # --- download ------------------------------------------------------------
    def iter_read(self, path: str, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        """Yields the file's bytes in chunks as they arrive (``GET .../files``).

        Raises OpenSandboxError if the stream ends early (never a silently
        short file)."""
        resp = self._client.open_stream("GET", self._url("", path), timeout=_TRANSFER_TIMEOUT)
        try:
            expected = resp.headers.get("Content-Length")
            got = 0
            while True:
                block = resp.read(chunk_size)
                if not block:
                    break
                got += len(block)
                yield block
            if expected is not None and got != int(expected):
                raise OpenSandboxError(f"download of {path} ended early ({got} of {expected} bytes)", 0, "GET", path)
        finally:
            resp.close()

    def read(self, path: str) -> bytes:
        """The whole file as bytes (for small files; see :meth:`read_to`)."""
        return b"".join(self.iter_read(path))

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return self.read(path).decode(encoding)

    def read_to(self, path: str, destination: Union[str, "os.PathLike[str]", BinaryIO]) -> int:
        """Streams the file into a local path or a binary file object; returns the byte count.

        A local path is written under a temporary name and renamed at the end,
        so a failed download never leaves a truncated file under its name."""
        if hasattr(destination, "write"):
            total = 0
            for block in self.iter_read(path):
                destination.write(block)  # type: ignore[union-attr]
                total += len(block)
            return total
        target = os.fspath(destination)  # type: ignore[arg-type]
        temp = f"{target}.partial-{os.getpid()}"
        try:
            with open(temp, "wb") as f:
                total = self.read_to(path, f)
            os.replace(temp, target)
            return total
        finally:
            if os.path.exists(temp):
                os.unlink(temp)

    # --- upload --------------------------------------------------------------
    def write(self, path: str, data: Union[bytes, bytearray, str, BinaryIO, "os.PathLike[str]"], *,
              mode: Optional[Union[int, str]] = None) -> Dict[str, Any]:
        """Uploads ``data`` to ``path`` (``PUT .../files``), replacing the file atomically.

        ``data``: bytes, a str (UTF-8), a binary file object (streamed from its
        current position to its end) or a local file path (``os.PathLike``).
        ``mode``: permission bits (``0o600`` or ``"600"``; default 0644).
        Returns ``{"path", "size"}``. A full disk raises PayloadTooLargeError (413)."""
        mode_text = _mode_text(mode)
        extra = f"&mode={mode_text}" if mode_text else ""
        url = self._url("", path, extra)
        if isinstance(data, str):
            data = data.encode("utf-8")
        if isinstance(data, (bytes, bytearray)):
            return self._put(url, io.BytesIO(bytes(data)), len(data))
        if isinstance(data, os.PathLike):
            with open(os.fspath(data), "rb") as f:
                return self._put(url, f, os.fstat(f.fileno()).st_size)
        if hasattr(data, "read"):
            length = _remaining(data)
            return self._put(url, data, length)
        raise ConfigurationError("files.write: data must be bytes, str, a binary file object or a path")

    def _put(self, url: str, body: BinaryIO, length: int) -> Dict[str, Any]:
        import json

        resp = self._client.open_stream("PUT", url, body=body, length=length, timeout=_TRANSFER_TIMEOUT)
        try:
            text = resp.read()
        finally:
            resp.close()
        return json.loads(text.decode("utf-8")) if text.strip() else {}

    # --- the rest ------------------------------------------------------------
    def list(self, path: str = "/home/sandbox") -> List[FileEntry]:
        """``GET .../files/list``: entries of a directory (or the one entry of a file)."""
        data = self._client.send(ApiRequest("GET", self._url("/list", path)))
        entries = data.get("entries", []) if isinstance(data, dict) else []
        return [FileEntry.from_json(e) for e in entries]

    def mkdir(self, path: str, *, parents: bool = False, mode: Optional[Union[int, str]] = None) -> None:
        """``POST .../files/mkdir``; ``parents`` creates missing parents and accepts an existing directory."""
        body: Dict[str, Any] = {"path": _check_path(path), "parents": bool(parents)}
        mode_text = _mode_text(mode)
        if mode_text:
            body["mode"] = mode_text
        self._client.send(ApiRequest("POST", f"/api/sandboxes/{seg(self._id)}/files/mkdir", body))

    def remove(self, path: str, *, recursive: bool = False) -> None:
        """``DELETE .../files``: a file, a symlink (not its target) or an empty directory; a tree with ``recursive``."""
        self._client.send(ApiRequest("DELETE", self._url("", path, "&recursive=true" if recursive else "")))

    def exists(self, path: str) -> bool:
        from .errors import NotFoundError

        try:
            self.list(path)
            return True
        except NotFoundError:
            return False


def _remaining(f: Any, what: str = "files.write") -> int:
    """Bytes from the file object's position to its end (it must be seekable);
    `what` names the call in the error (templates.import_ uses it too)."""
    try:
        pos = f.tell()
        end = f.seek(0, io.SEEK_END)
        f.seek(pos)
        return int(end - pos)
    except (AttributeError, OSError, ValueError):
        raise ConfigurationError(what + ": a file object must be seekable (its size is sent first)") from None
