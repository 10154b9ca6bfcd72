"""Lambda handlers.

`validate_on_upload` receives S3 event notifications (`ObjectCreated:*`) for an inbox bucket,
offers each new object to the data gate, then moves it under `processed/` or `rejected/` in
the same bucket. Environment:

- `AIDLC_WORKSPACE`: folder holding the `aidlc.yaml` for the AWS backends (shipped in the image);
- `AIDLC_TOKEN_SECRET`: the Secrets Manager secret (name or ARN) holding the data-steward token,
  read on each invocation (the Terraform module sets it); or `AIDLC_TOKEN` holding the token;
- `AIDLC_DATASET`: the dataset, unless objects are keyed `inbox/<dataset>/<file>`;
- `AIDLC_INBOX_KMS_KEY_ID`: the KMS key the moved copies are encrypted under (SSE-KMS), as the
  inbox bucket's policy demands of every upload;
- the standard AWS variables (`AWS_REGION`, and `AWS_ENDPOINT_URL` for an emulator).
"""

from __future__ import annotations

import os
import posixpath
from typing import Any
from urllib.parse import unquote_plus

from aidlc.errors import AidlcError, ConfigError, InvalidInput

MAX_OBJECT_BYTES = 4 << 30


def _records(event: Any) -> list[dict[str, Any]]:
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        raise InvalidInput("not an S3 event notification: no Records list")
    out = []
    for record in event["Records"]:
        if not isinstance(record, dict):
            continue
        name = str(record.get("eventName", ""))
        if record.get("eventSource") != "aws:s3" or not name.startswith("ObjectCreated"):
            continue
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        key = (s3.get("object") or {}).get("key")
        if not isinstance(bucket, str) or not isinstance(key, str):
            raise InvalidInput("an S3 record without bucket name or object key")
        out.append(
            {
                "bucket": bucket,
                "key": unquote_plus(key),
                "size": (s3.get("object") or {}).get("size"),
            }
        )
    return out


def _dataset_for(key: str) -> str:
    parts = key.split("/")
    if len(parts) >= 3 and parts[0] == "inbox":
        return parts[1]
    dataset = os.environ.get("AIDLC_DATASET")
    if not dataset:
        raise InvalidInput(f"cannot tell the dataset of {key!r}: key it inbox/<dataset>/<file>")
    return dataset


def _token() -> str | None:
    secret = os.environ.get("AIDLC_TOKEN_SECRET")
    if secret:
        from aidlc.aws.secrets import token_from_secret

        return token_from_secret(secret)
    return os.environ.get("AIDLC_TOKEN")


def validate_on_upload(event: Any, context: Any = None) -> dict[str, Any]:
    """Process every `ObjectCreated` record; returns one result per object (never raises for a
    bad file: the outcome says what happened, and the object is moved aside)."""
    import boto3

    from aidlc.core.audit import new_request_id
    from aidlc.core.workspace import Workspace
    from aidlc.data.ingest import ingest, spool

    new_request_id()
    records = _records(event)
    root = os.environ.get("AIDLC_WORKSPACE")
    if not root:
        raise ConfigError("AIDLC_WORKSPACE is not set: it names the folder holding aidlc.yaml")
    ws = Workspace.open(root, token=_token())
    s3 = boto3.client("s3")
    kms_key = os.environ.get("AIDLC_INBOX_KMS_KEY_ID")
    sse: dict[str, Any] = (
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key else {}
    )
    results = []
    try:
        for rec in records:
            bucket, key = rec["bucket"], rec["key"]
            if key.startswith(("processed/", "rejected/")):
                continue
            name = posixpath.basename(key) or "object"
            try:
                head = s3.head_object(Bucket=bucket, Key=key)
                if head["ContentLength"] > MAX_OBJECT_BYTES:
                    raise InvalidInput(f"{key} is larger than {MAX_OBJECT_BYTES} bytes")
                # Streamed to a private temporary file in 1 MiB pieces (never whole in
                # memory), pinned to the version `head` saw and cut off at the size limit.
                body = s3.get_object(Bucket=bucket, Key=key, IfMatch=head["ETag"])["Body"]
                path = spool(body, "-" + name, MAX_OBJECT_BYTES)
                try:
                    result = ingest(ws, path, _dataset_for(key), source_name=name)
                finally:
                    path.unlink(missing_ok=True)
                outcome, detail = result.outcome, result.ref or result.reason
            except AidlcError as exc:
                outcome, detail = "unusable", exc.message
            folder = "processed" if outcome in ("accepted", "partial") else "rejected"
            target = f"{folder}/{key}"
            s3.copy_object(
                Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": key}, **sse
            )
            s3.delete_object(Bucket=bucket, Key=key)
            results.append({"key": key, "outcome": outcome, "detail": detail, "moved_to": target})
    finally:
        ws.close()
    return {"processed": len(results), "results": results}
