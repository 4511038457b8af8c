"""Tests for gridpatrol.photos.storage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gridpatrol.photos import storage as storage_mod
from gridpatrol.photos.storage import LocalStorage, Storage, storage_from_url

KEY = "ab/cd/abcdef0123456789.jpg"


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "photos")


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_local_storage_implements_protocol(store):
    assert isinstance(store, Storage)


def test_round_trip(store, tmp_path):
    assert not store.exists(KEY)
    store.put(KEY, b"hello")
    assert store.exists(KEY)
    assert store.get(KEY) == b"hello"
    assert (tmp_path / "photos" / "ab" / "cd" / "abcdef0123456789.jpg").read_bytes() == b"hello"
    store.delete(KEY)
    assert not store.exists(KEY)
    with pytest.raises(KeyError):
        store.get(KEY)


def test_get_missing_is_key_error(store):
    with pytest.raises(KeyError):
        store.get("zz/zz/missing.jpg")


def test_delete_missing_is_silent(store):
    store.delete("zz/zz/missing.jpg")
    store.delete("missing.jpg")


def test_put_is_idempotent_and_overwrites(store):
    store.put(KEY, b"one")
    store.put(KEY, b"one")
    assert store.get(KEY) == b"one"
    store.put(KEY, b"two")
    assert store.get(KEY) == b"two"
    assert list(store.keys()) == [KEY]


def test_put_creates_subfolders_and_readable_file(store, tmp_path):
    store.put("a/b/c/d.png", b"x")
    path = tmp_path / "photos" / "a" / "b" / "c" / "d.png"
    assert path.is_file()
    assert path.stat().st_mode & 0o044 == 0o044  # not left 0600 by mkstemp


def test_put_writes_temp_in_same_folder_fsyncs_then_replaces(store, monkeypatch, tmp_path):
    events: list[tuple] = []
    real_replace, real_fsync = os.replace, os.fsync

    def spy_fsync(fd):
        events.append(("fsync",))
        return real_fsync(fd)

    def spy_replace(src, dst):
        src, dst = Path(src), Path(dst)
        events.append(("replace", src.parent == dst.parent, src.read_bytes(), dst.exists()))
        return real_replace(src, dst)

    monkeypatch.setattr(storage_mod.os, "fsync", spy_fsync)
    monkeypatch.setattr(storage_mod.os, "replace", spy_replace)
    store.put(KEY, b"payload")
    replaces = [e for e in events if e[0] == "replace"]
    assert replaces == [("replace", True, b"payload", False)]
    assert events[0] == ("fsync",)  # the temp file was fsynced before the replace
    assert store.get(KEY) == b"payload"


def test_failed_put_keeps_old_content_and_leaves_no_temp(store, monkeypatch, tmp_path):
    store.put(KEY, b"old")

    def boom(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(storage_mod.os, "replace", boom)
    with pytest.raises(OSError):
        store.put(KEY, b"new-but-never-visible")
    monkeypatch.undo()
    assert store.get(KEY) == b"old"
    assert files_under(tmp_path / "photos") == [KEY]


def test_failed_write_before_replace_leaves_nothing(store, monkeypatch, tmp_path):
    def boom(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(storage_mod.os, "fsync", boom)
    with pytest.raises(OSError):
        store.put(KEY, b"data")
    monkeypatch.undo()
    assert not store.exists(KEY)
    assert files_under(tmp_path / "photos") == []


@pytest.mark.parametrize(
    "key",
    [
        "../escape.jpg",
        "ab/../../escape.jpg",
        "ab/..",
        "..",
        "/etc/passwd",
        "ab\\cd\\x.jpg",
        "..\\x.jpg",
        "C:/x.jpg",
        "",
        "ab//x.jpg",
        "ab/./x.jpg",
        "ab/x.jpg/",
        ".tmp-abc.part",
        "ab/nul\x00.jpg",
        "ab/x..y.jpg",
    ],
)
def test_refused_keys(store, key, tmp_path):
    for op in (
        lambda: store.put(key, b"x"),
        lambda: store.get(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ):
        with pytest.raises(ValueError):
            op()
    assert not (tmp_path / "escape.jpg").exists()


def test_symlink_escaping_root_is_refused(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "photos" / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError):
        store.put("link/x.jpg", b"x")
    assert list(outside.iterdir()) == []


def test_keys_lists_everything_but_temp_files(store, tmp_path):
    expected = ["00/11/a.jpg", "ab/cd/b.jpg", "ab/cd/c_thumb.jpg", "top.txt"]
    for key in reversed(expected):
        store.put(key, key.encode())
    # a temp file from an interrupted put must not be reported
    (tmp_path / "photos" / "ab" / "cd" / ".tmp-dead.part").write_bytes(b"partial")
    keys = store.keys()
    assert iter(keys) is keys  # an iterator, usable lazily for big sweeps
    assert sorted(keys) == expected
    store.delete("top.txt")
    assert sorted(store.keys()) == expected[:-1]


def test_keys_of_empty_store(store):
    assert list(store.keys()) == []


def test_storage_from_file_url(tmp_path):
    target = tmp_path / "from url"
    s = storage_from_url("file://" + str(target).replace(" ", "%20"))
    assert isinstance(s, LocalStorage)
    s.put("x/y.jpg", b"1")
    assert (target / "x" / "y.jpg").read_bytes() == b"1"


def test_storage_from_plain_path(tmp_path):
    s = storage_from_url(str(tmp_path / "plain"))
    assert isinstance(s, LocalStorage)
    s.put("k.jpg", b"2")
    assert (tmp_path / "plain" / "k.jpg").read_bytes() == b"2"


@pytest.mark.parametrize(
    "url, scheme",
    [("s3://bucket/prefix", "s3"), ("https://example.com/x", "https"), ("ftp://h/p", "ftp")],
)
def test_storage_from_url_refuses_other_schemes(url, scheme):
    with pytest.raises(ValueError, match=scheme):
        storage_from_url(url)


def test_storage_from_url_refuses_file_url_with_host():
    with pytest.raises(ValueError):
        storage_from_url("file://otherhost/srv/photos")
