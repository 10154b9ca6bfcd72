"""aidlc on AWS end to end, against moto's standalone server (an AWS emulator) over HTTP: KMS
keys, an S3 store with SSE-KMS, and the metadata database URL read from Secrets Manager, with
the metadata itself on a real PostgreSQL. The lifecycle runs through the CLI in subprocesses."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from aidlc.aws.secrets import database_url, forget_cached_urls, url_from_secret
from aidlc.errors import ConfigError
from tests.cli.test_cli import run
from tests.moto_server import REGION

pytestmark = [pytest.mark.aws]

TRAIN_CONFIG = """\
format: 1
name: bc-aws
dataset: breast-cancer@latest
target: diagnosis
exclude: [patient_id]
seed: 5
model:
  type: xgboost
  params: {max_depth: 3, learning_rate: 0.2}
  rounds: 30
preprocessing:
  - impute: {columns: numeric, strategy: median}
validation: {method: holdout, test_size: 0.25, stratify: true}
metrics: [roc_auc, accuracy]
gates:
  - roc_auc >= 0.9
register: {model: breast-cancer, description: breast cancer demo on AWS}
card: {intended_use: tests, owner: qa}
"""

PRINCIPALS = {
    "steward": "data-steward",
    "trainer": "trainer",
    "approver": "approver",
    "inference": "inference",
}


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Dummy credentials and the emulator's endpoint, for this process and the CLI's."""
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_endpoint,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return values


def _secret(aws_client: Callable[[str], Any], value: str) -> str:
    """Store `value` as a new secret's SecretString; returns the secret's ARN."""
    name = f"aidlc/test-{secrets.token_hex(4)}/database"
    return str(aws_client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"])


def _all_objects(s3: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


@pytest.mark.slow
@pytest.mark.postgres
def test_lifecycle_on_s3_kms_and_secrets_manager_leaves_only_ciphertext(
    tmp_path: Path,
    aws_env: dict[str, str],
    aws_client: Callable[[str], Any],
    kms_key: str,
    s3_bucket: str,
    pg_url: str,
) -> None:
    from starlette.testclient import TestClient

    from aidlc.core import objects
    from aidlc.core.workspace import Workspace
    from aidlc.demo import breast_cancer
    from aidlc.serve.app import Server, create_app

    key_arn = aws_client("kms").describe_key(KeyId=kms_key)["KeyMetadata"]["Arn"]
    secret_arn = _secret(aws_client, pg_url)
    # The aidlc.yaml a deployment uses (deploy/terraform renders it): no endpoint in it, the
    # emulator comes from AWS_ENDPOINT_URL as boto3 resolves it.
    aws_yaml = tmp_path / "aws.yaml"
    aws_yaml.write_text(
        yaml.safe_dump(
            {
                "keys": {"provider": "kms", "kms_key_id": key_arn, "region": REGION},
                "store": {
                    "backend": "s3",
                    "bucket": s3_bucket,
                    "prefix": "aidlc/",
                    "region": REGION,
                    "sse_kms_key_id": key_arn,
                },
                "metadata": {"url_secret": secret_arn, "region": REGION},
            }
        )
    )
    # `aidlc init` takes no config file, so the workspace is made in process from that file.
    settings = yaml.safe_load(aws_yaml.read_text())
    ws, admin = Workspace.init(tmp_path / "ws", settings=settings)
    root = ws.root
    assert ws.db.engine.url.get_backend_name() == "postgresql"
    ws.close()

    tokens = {"admin": admin}
    for name, role in PRINCIPALS.items():
        proc = run("user", "add", name, "--role", role, "--json", token=admin, workspace=root)
        assert proc.returncode == 0, proc.stderr
        tokens[name] = json.loads(proc.stdout)["token"]

    frame = breast_cancer.frame()
    data = tmp_path / "data"
    data.mkdir()
    good, _ = breast_cancer.write_files(data)
    contract = data / "contract.yaml"
    contract.write_text(yaml.safe_dump(breast_cancer.contract(frame), sort_keys=False))
    proc = run(
        "data",
        "ingest",
        str(good),
        "--dataset",
        "breast-cancer",
        "--contract",
        str(contract),
        "--json",
        token=tokens["steward"],
        workspace=root,
    )
    assert proc.returncode == 0, proc.stderr
    ingested = json.loads(proc.stdout)
    assert ingested["outcome"] == "accepted" and ingested["rows"] == 400

    (tmp_path / "train.yaml").write_text(TRAIN_CONFIG)
    proc = run(
        "train", str(tmp_path / "train.yaml"), "--json", token=tokens["trainer"], workspace=root
    )
    assert proc.returncode == 0, proc.stderr
    trained = json.loads(proc.stdout)
    assert trained["model_version"] == "breast-cancer@1"
    assert trained["metrics"]["roc_auc"] >= 0.9

    own = ("models", "approve", "breast-cancer@1", "--reason", "mine")
    denied = run(*own, token=tokens["trainer"], workspace=root)
    assert denied.returncode == 4, denied.stderr
    proc = run(
        "models",
        "approve",
        "breast-cancer@1",
        "--reason",
        "gates passed on AWS",
        "--json",
        token=tokens["approver"],
        workspace=root,
    )
    assert proc.returncode == 0, proc.stderr
    assert "production" in json.loads(proc.stdout)["aliases"]

    # Load and predict: the inference API in process, reading the model back from S3 via KMS.
    sample = frame.tail(5)
    records = sample.drop(["patient_id", "diagnosis"]).to_dicts()
    with Workspace.open(root, token=tokens["inference"]) as api:
        server = Server(api, api.config.serve)
        with TestClient(create_app(server)) as client:
            response = client.post(
                "/v1/models/breast-cancer:predict",
                headers={"Authorization": f"Bearer {tokens['inference']}"},
                json={"records": records},
            )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["version"] == 1
    predicted = [p["prediction"] for p in answer["predictions"]]
    assert predicted == sample["diagnosis"].to_list()

    s3 = aws_client("s3")
    keys = _all_objects(s3, s3_bucket)
    zones = {key.split("/")[1] for key in keys}
    assert zones == {"raw", "validated", "models", "predictions"}, zones
    # What S3 holds decrypts (with the KMS key, by a permitted principal) to the very file.
    zone, _, ref = ingested["raw_object"].partition("/")
    object_id, _, version = ref.rpartition("@")
    with Workspace.open(root, token=tokens["steward"]) as steward:
        assert objects.get_bytes(steward, zone, object_id, int(version)) == good.read_bytes()
    header = good.read_bytes().split(b"\n", 1)[0]
    first_row = good.read_bytes().split(b"\n")[1].split(b",")
    plaintext = [
        header,
        first_row[0],  # P-00001, a subject id
        first_row[1],  # a measurement as the CSV writes it
        b"mean_radius",
        b"worst_concave_points",
        b"patient_id",
        b"diagnosis",
        b"malignant",
        b"benign",
        b"breast",
        b"learner",
        b"gradient_booster",
    ]
    for key in keys:
        assert "breast" not in key and "cancer" not in key, key
        head = s3.head_object(Bucket=s3_bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"].endswith(kms_key), key
        body = s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        found = [p for p in plaintext if p in body]
        assert not found, f"{key} holds plaintext {found}"

    config_text = (root / "aidlc.yaml").read_text()
    password = pg_url.split(":")[2].split("@")[0]
    assert password not in config_text and pg_url not in config_text
    assert secret_arn in config_text

    # The posture check credits where the URL comes from, without showing it.
    proc = run("doctor", "--json", token=admin, workspace=root)
    assert pg_url not in proc.stdout and password not in proc.stdout
    [database] = [c for c in json.loads(proc.stdout)["checks"] if c["id"] == "metadata.database"]
    assert database["status"] == "pass"
    assert f"the URL comes from the AWS Secrets Manager secret {secret_arn}" in database["evidence"]


def test_a_missing_secret_stops_the_cli_with_a_clear_config_error(
    tmp_path: Path, aws_env: dict[str, str], aws_client: Callable[[str], Any]
) -> None:
    existing = _secret(aws_client, "postgresql+psycopg://app:hunter2@db.internal:5432/aidlc")
    missing = existing.rsplit(":", 1)[0] + ":aidlc/no-such-secret-AbCdEf"
    root = tmp_path / "ws"
    root.mkdir()
    (root / "aidlc.yaml").write_text(
        yaml.safe_dump({"metadata": {"url_secret": missing, "region": REGION}})
    )
    proc = run("audit", "verify", workspace=root, token="aidlc_x")
    assert proc.returncode == 2
    assert f"AWS Secrets Manager has no secret {missing} (ResourceNotFoundException)" in (
        proc.stderr
    )
    assert "metadata.url_secret" in proc.stderr


def test_an_unreadable_secret_names_the_secret_and_aws_code_only() -> None:
    from botocore.exceptions import ClientError

    class Denying:
        def get_secret_value(self, SecretId: str) -> dict[str, Any]:
            error = {"Error": {"Code": "AccessDeniedException", "Message": "hunter2 not for you"}}
            raise ClientError(error, "GetSecretValue")

    with pytest.raises(ConfigError) as info:
        database_url("arn:aws:secretsmanager:us-east-1:1:secret:db-denied", client=Denying())
    assert str(info.value).startswith(
        "cannot read secret arn:aws:secretsmanager:us-east-1:1:secret:db-denied from AWS "
        "Secrets Manager (AccessDeniedException)"
    )
    assert "hunter2" not in str(info.value)


def test_rds_json_credentials_become_a_postgres_url_with_quoted_password(
    aws_env: dict[str, str], aws_client: Callable[[str], Any]
) -> None:
    creds = {
        "username": "aidlc_app",
        "password": "p@ss:w/rd?#%",
        "engine": "postgres",
        "host": "aidlc.abc123.us-east-1.rds.amazonaws.com",
        "port": 5432,
        "dbname": "aidlc",
    }
    arn = _secret(aws_client, json.dumps(creds))
    url = database_url(arn, region=REGION)
    assert url == (
        "postgresql+psycopg://aidlc_app:p%40ss%3Aw%2Frd%3F%23%25"
        "@aidlc.abc123.us-east-1.rds.amazonaws.com:5432/aidlc?sslmode=require"
    )
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    assert parsed.password == creds["password"] and parsed.database == "aidlc"


def test_the_url_is_fetched_once_per_process(
    aws_env: dict[str, str], aws_client: Callable[[str], Any]
) -> None:
    first = "postgresql+psycopg://app:one@db:5432/aidlc"
    arn = _secret(aws_client, first)
    assert database_url(arn, region=REGION) == first
    aws_client("secretsmanager").put_secret_value(
        SecretId=arn, SecretString="postgresql+psycopg://app:two@db:5432/aidlc"
    )
    assert database_url(arn, region=REGION) == first
    forget_cached_urls()
    assert database_url(arn, region=REGION) == "postgresql+psycopg://app:two@db:5432/aidlc"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"username": "u", "password": "hunter2", "host": ', "holds malformed JSON"),
        ('["hunter2"]', "holds JSON that is not an object"),
        ('{"username": "u", "password": "hunter2"}', "lacks host"),
        (
            '{"username": "u", "password": "hunter2", "host": "h", "port": "x"}',
            "has a port that is not a number",
        ),
        (
            '{"username": "u", "password": "hunter2", "host": "h", "engine": "mysql"}',
            "is for a mysql database",
        ),
        ("hunter2", "holds neither a database URL nor JSON credentials"),
    ],
)
def test_malformed_secret_text_is_a_config_error_without_the_secret(
    text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        url_from_secret(text, secret_id="prod/aidlc/db")
    assert f"secret prod/aidlc/db {message}" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_json_credentials_default_port_database_and_keep_a_given_sslmode() -> None:
    text = json.dumps({"username": "u", "password": "pw", "host": "db", "sslmode": "verify-full"})
    assert url_from_secret(text, secret_id="s") == (
        "postgresql+psycopg://u:pw@db:5432/postgres?sslmode=verify-full"
    )
