"""The S3-triggered validation Lambda, fed S3 event notifications that moto's server emits
itself (S3 → SQS), reading and moving objects through boto3 over HTTP."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pytest

from aidlc.data import versions
from tests.data.test_ingest import BAD, GOOD, contract

pytestmark = pytest.mark.aws


@pytest.fixture
def inbox(aws_client, s3_bucket):
    s3, sqs = aws_client("s3"), aws_client("sqs")
    queue = sqs.create_queue(QueueName=f"q-{s3_bucket}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=s3_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "inbox/"}]}},
                }
            ]
        },
    )
    return s3, sqs, queue


def _events(sqs, queue, want: int):
    found = []
    deadline = time.monotonic() + 20
    while len(found) < want and time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        for m in messages:
            body = json.loads(m["Body"])
            if "Records" in body:
                found.append(body)
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    return found


def test_uploaded_files_are_validated_and_moved_aside(
    local_env, inbox, s3_bucket, moto_endpoint, aws_client, kms_key, monkeypatch
):
    from aidlc.aws.handlers import validate_on_upload

    s3, sqs, queue = inbox
    steward = local_env.open("steward")
    versions.set_contract(steward, "customers", contract())
    s3.put_object(Bucket=s3_bucket, Key="inbox/customers/good file.csv", Body=GOOD.encode())
    s3.put_object(Bucket=s3_bucket, Key="inbox/customers/bad.csv", Body=BAD.encode())
    events = _events(sqs, queue, 2)
    assert len(events) == 2
    assert all(e["Records"][0]["eventName"].startswith("ObjectCreated") for e in events)
    for key, value in {
        "AIDLC_WORKSPACE": str(local_env.root),
        # As the Terraform module deploys it: the token is read from Secrets Manager.
        "AIDLC_TOKEN_SECRET": aws_client("secretsmanager").create_secret(
            Name=f"tokens/data-steward-{s3_bucket}", SecretString=local_env.tokens["steward"]
        )["ARN"],
        "AIDLC_INBOX_KMS_KEY_ID": kms_key,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    outcomes = {}
    for event in events:
        for r in validate_on_upload(event)["results"]:
            outcomes[r["key"]] = r
    assert outcomes["inbox/customers/good file.csv"]["outcome"] == "accepted"
    assert outcomes["inbox/customers/bad.csv"]["outcome"] == "rejected"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert keys == {"processed/inbox/customers/good file.csv", "rejected/inbox/customers/bad.csv"}
    for key in keys:  # the copies carry the SSE-KMS headers the inbox bucket's policy demands
        head = s3.head_object(Bucket=s3_bucket, Key=key)
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"].rsplit("/", 1)[-1]) == (
            "aws:kms",
            kms_key.rsplit("/", 1)[-1],
        )
    assert versions.resolve(steward, "customers@latest").source_name == "good file.csv"


def test_a_malformed_event_is_refused_with_a_clear_error():
    from aidlc.aws.handlers import validate_on_upload
    from aidlc.errors import InvalidInput

    with pytest.raises(InvalidInput, match="Records"):
        validate_on_upload({"hello": "world"})


def test_the_token_secret_must_hold_a_token(aws_client, moto_endpoint, monkeypatch):
    from aidlc.aws.secrets import token_from_secret
    from aidlc.errors import ConfigError

    sm = aws_client("secretsmanager")
    good = sm.create_secret(Name="tokens/good", SecretString="aidlc_abc123\n")["ARN"]
    bad = sm.create_secret(Name="tokens/bad", SecretString="postgresql://u:hunter2@db/x")["ARN"]
    assert token_from_secret(good, region="us-east-1", client=sm) == "aidlc_abc123"
    with pytest.raises(ConfigError, match="does not hold an aidlc token") as info:
        token_from_secret(bad, region="us-east-1", client=sm)
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConfigError, match=r"has no secret tokens/missing \(ResourceNotFound"):
        token_from_secret("tokens/missing", region="us-east-1", client=sm)


def test_a_missing_workspace_setting_is_a_config_error(monkeypatch):
    from aidlc.aws.handlers import validate_on_upload
    from aidlc.errors import ConfigError

    monkeypatch.delenv("AIDLC_WORKSPACE", raising=False)
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "b"}, "object": {"key": "inbox/d/f.csv"}},
            }
        ]
    }
    with pytest.raises(ConfigError, match="AIDLC_WORKSPACE is not set"):
        validate_on_upload(event)


def test_an_object_is_streamed_to_a_private_file_and_cut_off_past_the_limit(tmp_path):
    import io
    import stat

    from aidlc.data.ingest import spool
    from aidlc.errors import InvalidInput

    data = bytes(range(256)) * 10_000  # 2.5 MB, more than one 1 MiB piece
    path = spool(io.BytesIO(data), "-x.csv", 4 << 30)
    try:
        assert path.read_bytes() == data
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        path.unlink()
    before = set(Path(tempfile.gettempdir()).glob("aidlc-*-big.csv"))
    with pytest.raises(InvalidInput, match="grew past 1000000 bytes"):
        spool(io.BytesIO(data), "-big.csv", 1_000_000)
    assert set(Path(tempfile.gettempdir()).glob("aidlc-*-big.csv")) == before  # nothing left
