"""Object stores: atomic write-once objects in a local folder and in S3 (moto server)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidlc.core.store import LocalObjectStore, ObjectStore, S3ObjectStore, check_key, s3_client
from aidlc.errors import Conflict, InvalidInput, NotFound, UsageError

MIB = 1 << 20
SRC = Path(__file__).resolve().parents[2] / "src"

BAD_KEYS = [
    "",
    "/abs/path",
    "../escape",
    "raw/../../etc/passwd",
    "raw/./x",
    "raw//x",
    "raw/x/",
    ".tmp/abc",
    "raw/.hidden",
    "raw/spa ce",
    "raw/ünïcode",
    "raw\\x",
    "raw/x\x00",
    "a" * 600,
]


@pytest.fixture
def local(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def put(store: ObjectStore, key: str, data: bytes) -> None:
    with store.writer(key) as out:
        out.write(data)


def get(store: ObjectStore, key: str) -> bytes:
    with store.reader(key) as src:
        return src.read()


# --- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidInput):
        check_key(key)


@pytest.mark.parametrize("key", ["raw/abc123/00000001", "a", "models/m-1/v_2.onnx", "x/y/z/w"])
def test_safe_keys_are_accepted(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("key", BAD_KEYS)
def test_local_store_refuses_unsafe_keys_on_every_operation(
    local: LocalObjectStore, key: str
) -> None:
    with pytest.raises(InvalidInput):
        put(local, key, b"x")
    with pytest.raises(InvalidInput):
        get(local, key)
    with pytest.raises(InvalidInput):
        local.exists(key)
    with pytest.raises(InvalidInput):
        local.delete(key)
    assert list(local.root.rglob("*")) == [local.root / ".tmp"]


# --- local folder ----------------------------------------------------------------------------


def test_local_write_then_read_round_trips(local: LocalObjectStore) -> None:
    data = os.urandom(3 * MIB + 7)
    put(local, "raw/abc/00000001", data)
    assert get(local, "raw/abc/00000001") == data
    assert local.exists("raw/abc/00000001")
    assert list(local.keys()) == ["raw/abc/00000001"]
    assert local.kind == "local"


def test_local_objects_and_folders_are_private(local: LocalObjectStore) -> None:
    put(local, "raw/abc/00000001", b"x")
    assert stat.S_IMODE((local.root / "raw/abc/00000001").stat().st_mode) == 0o600
    for folder in [local.root, local.root / ".tmp", local.root / "raw", local.root / "raw/abc"]:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_local_object_is_invisible_until_the_writer_exits(local: LocalObjectStore) -> None:
    with local.writer("raw/a/1") as out:
        out.write(b"partial")
        out.flush()
        assert not local.exists("raw/a/1")
        assert list(local.keys()) == []
        with pytest.raises(NotFound):
            get(local, "raw/a/1")
    assert get(local, "raw/a/1") == b"partial"


def test_local_second_write_to_the_same_key_is_a_conflict(local: LocalObjectStore) -> None:
    put(local, "raw/a/1", b"first")
    with pytest.raises(Conflict):
        put(local, "raw/a/1", b"second")
    assert get(local, "raw/a/1") == b"first"
    assert os.listdir(local.root / ".tmp") == []


def test_local_key_running_through_an_existing_object_is_a_conflict(
    local: LocalObjectStore,
) -> None:
    put(local, "raw/a", b"object")
    with pytest.raises(Conflict):
        put(local, "raw/a/1", b"below an object")
    assert list(local.keys()) == ["raw/a"]
    assert os.listdir(local.root / ".tmp") == []


def test_local_racing_writers_to_one_key_publish_exactly_one(local: LocalObjectStore) -> None:
    first = local.writer("raw/a/1")
    second = local.writer("raw/a/1")
    out_first, out_second = first.__enter__(), second.__enter__()
    out_first.write(b"first")
    out_second.write(b"second")
    first.__exit__(None, None, None)
    with pytest.raises(Conflict):
        second.__exit__(None, None, None)
    assert get(local, "raw/a/1") == b"first"
    assert os.listdir(local.root / ".tmp") == []


def test_local_exception_inside_writer_leaves_nothing_visible(local: LocalObjectStore) -> None:
    with pytest.raises(RuntimeError), local.writer("raw/a/1") as out:
        out.write(b"half an object")
        raise RuntimeError("ingest failed")
    assert not local.exists("raw/a/1")
    assert list(local.keys()) == []
    assert os.listdir(local.root / ".tmp") == []
    put(local, "raw/a/1", b"retry works")
    assert get(local, "raw/a/1") == b"retry works"


def test_local_reading_a_missing_object_is_not_found(local: LocalObjectStore) -> None:
    with pytest.raises(NotFound):
        get(local, "raw/none/1")
    put(local, "raw/file", b"x")
    with pytest.raises(NotFound):
        get(local, "raw/file/below")  # a path through a file is just as missing


def test_local_delete_is_idempotent(local: LocalObjectStore) -> None:
    put(local, "raw/a/1", b"x")
    local.delete("raw/a/1")
    local.delete("raw/a/1")
    local.delete("raw/never/1")
    assert not local.exists("raw/a/1")
    assert list(local.keys()) == []


def test_local_keys_are_sorted_and_filtered_by_prefix(local: LocalObjectStore) -> None:
    for key in ["raw/b/1", "raw/a/2", "raw/a.b", "raw/a/1", "validated/a/1", "raw/ab/1"]:
        put(local, key, b"x")
    assert list(local.keys()) == sorted(
        ["raw/a.b", "raw/a/1", "raw/a/2", "raw/ab/1", "raw/b/1", "validated/a/1"]
    )
    assert list(local.keys("raw/a/")) == ["raw/a/1", "raw/a/2"]
    assert list(local.keys("raw/a")) == ["raw/a.b", "raw/a/1", "raw/a/2", "raw/ab/1"]
    assert list(local.keys("validated")) == ["validated/a/1"]
    assert list(local.keys("nothing/")) == []
    with pytest.raises(InvalidInput):
        list(local.keys("../"))


_SLOW_WRITER = """
import sys, time
from pathlib import Path
from aidlc.core.store import LocalObjectStore
store = LocalObjectStore(Path(sys.argv[1]))
with store.writer("raw/big/00000001") as out:
    block = b"c" * (1 << 20)
    for i in range(10_000):
        out.write(block)
        out.flush()
        if i == 4:
            print("writing", flush=True)
        time.sleep(0.01)
"""


def test_a_writer_killed_mid_write_leaves_no_visible_object(local: LocalObjectStore) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(local.root)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"writing\n"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        child.kill()
    assert child.returncode == -signal.SIGKILL

    assert not local.exists("raw/big/00000001")
    assert list(local.keys()) == []
    with pytest.raises(NotFound):
        get(local, "raw/big/00000001")
    # The partial bytes sit only in a temp file; a recent one is kept, a stale one is swept.
    temps = list((local.root / ".tmp").iterdir())
    assert len(temps) == 1 and temps[0].stat().st_size >= 5 * MIB
    assert local.sweep_temp(older_than_seconds=3600) == 0
    old = time.time() - 7200
    os.utime(temps[0], (old, old))
    assert local.sweep_temp(older_than_seconds=3600) == 1
    assert list((local.root / ".tmp").iterdir()) == []
    # The key is free for a clean retry.
    put(local, "raw/big/00000001", b"complete")
    assert get(local, "raw/big/00000001") == b"complete"


# --- S3 (moto server) ------------------------------------------------------------------------


@pytest.fixture
def s3(aws_client: Callable[[str], Any], s3_bucket: str, kms_key: str) -> S3ObjectStore:
    return S3ObjectStore(
        s3_bucket,
        "ws1",
        client=aws_client("s3"),
        sse_kms_key_id=kms_key,
        part_size=5 * MIB,
    )


def multipart_uploads(store: S3ObjectStore) -> list[Any]:
    return list(store._client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []))


@pytest.mark.aws
def test_s3_small_object_round_trips(s3: S3ObjectStore) -> None:
    put(s3, "raw/abc/00000001", b"ciphertext")
    assert get(s3, "raw/abc/00000001") == b"ciphertext"
    assert s3.exists("raw/abc/00000001")
    assert list(s3.keys()) == ["raw/abc/00000001"]
    # The bucket prefix is applied and hidden.
    listed = s3._client.list_objects_v2(Bucket=s3.bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["ws1/raw/abc/00000001"]


@pytest.mark.aws
def test_s3_empty_object_round_trips(s3: S3ObjectStore) -> None:
    put(s3, "raw/empty/1", b"")
    assert get(s3, "raw/empty/1") == b""


@pytest.mark.aws
def test_s3_large_object_is_uploaded_in_parts_and_round_trips(s3: S3ObjectStore) -> None:
    data = os.urandom(12 * MIB + 3)
    with s3.writer("raw/big/1") as out:
        for start in range(0, len(data), 1 << 18):  # many writes smaller than a part
            out.write(data[start : start + (1 << 18)])
    assert get(s3, "raw/big/1") == data
    head = s3._client.head_object(Bucket=s3.bucket, Key="ws1/raw/big/1")
    assert head["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 2 MiB
    assert multipart_uploads(s3) == []


@pytest.mark.aws
@pytest.mark.parametrize("size", [10, 6 * MIB])
def test_s3_objects_are_stored_with_sse_kms_under_the_given_key(
    s3: S3ObjectStore, kms_key: str, size: int
) -> None:
    put(s3, "raw/a/1", os.urandom(size))
    head = s3._client.head_object(Bucket=s3.bucket, Key="ws1/raw/a/1")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert kms_key in head["SSEKMSKeyId"]


@pytest.mark.aws
def test_s3_without_a_kms_key_id_still_asks_for_sse_kms(
    aws_client: Callable[[str], Any], s3_bucket: str
) -> None:
    store = S3ObjectStore(s3_bucket, client=aws_client("s3"))
    put(store, "raw/a/1", b"x")
    head = store._client.head_object(Bucket=s3_bucket, Key="raw/a/1")
    assert head["ServerSideEncryption"] == "aws:kms"


@pytest.mark.aws
def test_s3_second_write_to_the_same_key_is_a_conflict(s3: S3ObjectStore) -> None:
    put(s3, "raw/a/1", b"first")
    with pytest.raises(Conflict):
        put(s3, "raw/a/1", b"second")
    assert get(s3, "raw/a/1") == b"first"


@pytest.mark.aws
@pytest.mark.parametrize("size", [10, 6 * MIB])
def test_s3_racing_writers_publish_exactly_one_via_if_none_match(
    s3: S3ObjectStore, size: int
) -> None:
    # Both writers pass the HeadObject check; S3's If-None-Match refuses the later one.
    first, second = s3.writer("raw/a/1"), s3.writer("raw/a/1")
    out_first, out_second = first.__enter__(), second.__enter__()
    out_first.write(b"1" * size)
    out_second.write(b"2" * size)
    first.__exit__(None, None, None)
    with pytest.raises(Conflict):
        second.__exit__(None, None, None)
    assert get(s3, "raw/a/1") == b"1" * size
    assert multipart_uploads(s3) == []


@pytest.mark.aws
@pytest.mark.parametrize("size", [10, 11 * MIB])
def test_s3_exception_inside_writer_leaves_nothing_and_aborts_the_upload(
    s3: S3ObjectStore, size: int
) -> None:
    with pytest.raises(RuntimeError), s3.writer("raw/a/1") as out:
        out.write(b"x" * size)
        raise RuntimeError("ingest failed")
    assert not s3.exists("raw/a/1")
    assert list(s3.keys()) == []
    assert multipart_uploads(s3) == []


@pytest.mark.aws
def test_s3_missing_object_is_not_found_and_delete_is_idempotent(s3: S3ObjectStore) -> None:
    with pytest.raises(NotFound):
        get(s3, "raw/none/1")
    assert not s3.exists("raw/none/1")
    put(s3, "raw/a/1", b"x")
    s3.delete("raw/a/1")
    s3.delete("raw/a/1")
    assert not s3.exists("raw/a/1")


@pytest.mark.aws
def test_s3_keys_are_sorted_and_filtered_by_prefix(s3: S3ObjectStore) -> None:
    for key in ["raw/b/1", "raw/a/2", "raw/a/1", "validated/a/1"]:
        put(s3, key, b"x")
    assert list(s3.keys()) == ["raw/a/1", "raw/a/2", "raw/b/1", "validated/a/1"]
    assert list(s3.keys("raw/a/")) == ["raw/a/1", "raw/a/2"]


@pytest.mark.aws
def test_s3_store_refuses_unsafe_keys(s3: S3ObjectStore) -> None:
    for key in ["../x", "/abs", "raw/.hidden"]:
        with pytest.raises(InvalidInput):
            put(s3, key, b"x")
    assert list(s3.keys()) == []


def test_s3_part_size_below_the_s3_minimum_is_refused() -> None:
    with pytest.raises(UsageError):
        S3ObjectStore("bucket", client=object(), part_size=MIB)


def test_s3_client_helper_targets_the_given_region_and_endpoint() -> None:
    client = s3_client("eu-west-1", "http://127.0.0.1:4566")
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == "http://127.0.0.1:4566"
