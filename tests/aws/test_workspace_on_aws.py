"""A workspace on AWS backends (KMS key provider, S3 store), through boto3 over HTTP against
moto's standalone server, with metadata on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import pytest

from aidlc.core import objects
from aidlc.errors import IntegrityError

pytestmark = pytest.mark.aws

SECRET_ROWS = b"account,balance\nACC-99231,1048576.00\n" * 500


@pytest.fixture
def aws_env(make_env, metadata_backend, moto_endpoint, kms_key, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    env = make_env(
        metadata_backend,
        keys={
            "provider": "kms",
            "kms_key_id": kms_key,
            "region": "us-east-1",
            "endpoint_url": moto_endpoint,
        },
        store={
            "backend": "s3",
            "bucket": s3_bucket,
            "prefix": "ws1/",
            "region": "us-east-1",
            "endpoint_url": moto_endpoint,
            "sse_kms_key_id": kms_key,
        },
    )
    env.bucket = s3_bucket
    env.kms_key = kms_key
    return env


def test_objects_round_trip_encrypted_before_upload(aws_env, aws_client):
    steward = aws_env.open("steward")
    info = objects.put_bytes(steward, "raw", "ledger.csv", SECRET_ROWS)
    assert objects.get_bytes(steward, "raw", "ledger.csv") == SECRET_ROWS
    s3 = aws_client("s3")
    listed = s3.list_objects_v2(Bucket=aws_env.bucket)["Contents"]
    assert len(listed) == 1 and listed[0]["Key"].startswith("ws1/raw/")
    key = listed[0]["Key"]
    body = s3.get_object(Bucket=aws_env.bucket, Key=key)["Body"].read()
    assert b"ACC-99231" not in body and b"ledger" not in key.encode()
    head = s3.head_object(Bucket=aws_env.bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert aws_env.kms_key in head["SSEKMSKeyId"]
    assert info.key_id  # the KMS key that wrapped the data key


def test_tampered_s3_object_fails_to_decrypt(aws_env, aws_client):
    steward = aws_env.open("steward")
    objects.put_bytes(steward, "raw", "a.csv", SECRET_ROWS)
    objects.put_bytes(steward, "raw", "b.csv", SECRET_ROWS[::-1])
    s3 = aws_client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=aws_env.bucket)["Contents"]]
    blobs = {k: s3.get_object(Bucket=aws_env.bucket, Key=k)["Body"].read() for k in keys}
    # Swap the two ciphertexts behind aidlc's back.
    s3.put_object(Bucket=aws_env.bucket, Key=keys[0], Body=blobs[keys[1]])
    s3.put_object(Bucket=aws_env.bucket, Key=keys[1], Body=blobs[keys[0]])
    with pytest.raises(IntegrityError):
        objects.get_bytes(steward, "raw", "a.csv")
    with pytest.raises(IntegrityError):
        objects.get_bytes(steward, "raw", "b.csv")


def test_audit_and_crypto_shredding_on_aws(aws_env, aws_client):
    steward = aws_env.open("steward")
    objects.put_bytes(steward, "raw", "gone.csv", SECRET_ROWS)
    objects.delete(steward, "raw", "gone.csv", 1, reason="erasure request")
    assert aws_client("s3").list_objects_v2(Bucket=aws_env.bucket).get("KeyCount", 0) == 0
    verdict = aws_env.open("auditor").audit.verify()
    assert verdict.ok


def test_kms_key_rotation_keeps_objects_readable(aws_env):
    steward = aws_env.open("steward")
    objects.put_bytes(steward, "raw", "before.csv", b"before rotation")
    admin = aws_env.open("admin")
    result = objects.rotate_keys(admin)
    assert result["rewrapped"] == 1 and result["key_id"].endswith("@v2")
    steward = aws_env.open("steward")
    objects.put_bytes(steward, "raw", "after.csv", b"after rotation")
    assert objects.get_bytes(steward, "raw", "before.csv") == b"before rotation"
    assert objects.get_bytes(steward, "raw", "after.csv") == b"after rotation"
    assert aws_env.open("auditor").audit.verify().ok
