"""Blob storage for photo files.

``Storage`` is the interface the rest of the application uses; ``LocalStorage``
keeps blobs in a folder today, and a shared object store (S3, MinIO, OSS...)
can implement the same five methods later without touching callers.

Keys are relative, slash-separated paths such as ``"ab/cd/<sha256>.jpg"``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

__all__ = ["Storage", "LocalStorage", "storage_from_url"]


@runtime_checkable
class Storage(Protocol):
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically; overwriting the same key is fine."""

    def get(self, key: str) -> bytes:
        """Return the stored bytes; ``KeyError`` when absent."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove ``key``; no error when absent."""

    def keys(self) -> Iterator[str]:
        """All stored keys (for orphan sweeps)."""


_TMP_PREFIX = ".tmp-"


def _check_key(key: str) -> list[str]:
    if not isinstance(key, str) or not key:
        raise ValueError("storage key must be a non-empty string")
    if "\\" in key:
        raise ValueError(f"storage key must not contain backslashes: {key!r}")
    if ".." in key:
        raise ValueError(f"storage key must not contain '..': {key!r}")
    if key.startswith("/") or (len(key) > 1 and key[1] == ":"):
        raise ValueError(f"storage key must be relative: {key!r}")
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in key):
        raise ValueError(f"storage key must not contain control characters: {key!r}")
    parts = key.split("/")
    for part in parts:
        if not part or part == ".":
            raise ValueError(f"storage key has an empty or '.' segment: {key!r}")
        if part.startswith("."):
            # Dot-names are reserved for temporary files of in-flight writes.
            raise ValueError(f"storage key segments must not start with '.': {key!r}")
    return parts


class LocalStorage:
    """``Storage`` backed by a folder on the local file system."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self._resolved_root = self.root.resolve()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        parts = _check_key(key)
        path = self.root.joinpath(*parts)
        # Belt and braces: a symlink inside the root must not lead outside it.
        if not path.resolve().is_relative_to(self._resolved_root):
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp_name, 0o644)  # mkstemp creates 0600
            os.replace(tmp_name, path)
        except BaseException:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass
            raise
        _fsync_dir(path.parent)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            pass

    def keys(self) -> Iterator[str]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel = Path(dirpath).relative_to(self.root)
            for name in sorted(filenames):
                if name.startswith("."):
                    continue  # temp files of in-flight puts
                yield (rel / name).as_posix()


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); silently skipped where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def storage_from_url(url: str) -> Storage:
    """``file:///abs/path`` or a plain path -> ``LocalStorage``; else ``ValueError``."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("storage URL must be a non-empty string")
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "" or (len(scheme) == 1 and url[1:2] == ":"):  # plain path (or C:\ ...)
        return LocalStorage(url)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URL must be file:///absolute/path, got {url!r}")
        path = unquote(parts.path)
        if not path:
            raise ValueError(f"file URL has no path: {url!r}")
        return LocalStorage(path)
    raise ValueError(f"unsupported storage URL scheme {scheme!r}")
