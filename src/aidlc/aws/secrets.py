"""The metadata database URL from AWS Secrets Manager (`metadata.url_secret`).

Fetched once per process and kept in memory only; neither the URL nor the secret's text ever
reaches a log line or an error message.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from aidlc.errors import ConfigError

# RDS-style credentials: the keys Secrets Manager's "Credentials for Amazon RDS database" secret
# type (and its rotation functions) use.
_REQUIRED = ("username", "password", "host")
_POSTGRES_ENGINES = frozenset({"postgres", "postgresql", "aurora-postgresql"})

_cache: dict[tuple[str, str | None, str | None], str] = {}
_lock = threading.Lock()


def secrets_client(region: str | None, endpoint_url: str | None = None) -> Any:
    """A boto3 Secrets Manager client; credentials, and the region and endpoint when None
    (`AWS_REGION`, `AWS_ENDPOINT_URL`, ...), come from boto3's usual resolution."""
    import boto3

    return boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)


def url_from_secret(secret_string: str, *, secret_id: str) -> str:
    """The SQLAlchemy URL a secret's text holds: the URL itself, or RDS-style JSON credentials
    (`username`, `password`, `host`, optional `port`, `dbname`, `engine`, `sslmode`).

    JSON credentials give a `postgresql+psycopg://` URL with the password quoted and TLS
    required (`sslmode=require`) unless the JSON names another `sslmode`.

    >>> url_from_secret("postgresql+psycopg://app:pw@db:5432/aidlc", secret_id="s")
    'postgresql+psycopg://app:pw@db:5432/aidlc'
    >>> url_from_secret(
    ...     '{"username": "app", "password": "p@ss/w:rd", "host": "db.example", "port": 5432,'
    ...     ' "dbname": "aidlc", "engine": "postgres"}', secret_id="s")
    'postgresql+psycopg://app:p%40ss%2Fw%3Ard@db.example:5432/aidlc?sslmode=require'
    """
    text = secret_string.strip()
    if text.startswith(("{", "[")):
        return _url_from_credentials(text, secret_id)
    if "://" not in text:
        raise ConfigError(
            f"secret {secret_id} holds neither a database URL nor JSON credentials",
            hint="store postgresql+psycopg://user:password@host:5432/db, or RDS-style JSON "
            "with username, password, host, port and dbname",
        )
    return text


def _url_from_credentials(text: str, secret_id: str) -> str:
    from sqlalchemy.engine import URL

    try:
        creds = json.loads(text)
    except ValueError:
        # The decoder's message quotes the text around the fault, which may be the password.
        raise ConfigError(
            f"secret {secret_id} holds malformed JSON",
            hint="store a JSON object with username, password, host, port and dbname, "
            "or the database URL itself",
        ) from None
    if not isinstance(creds, dict):
        raise ConfigError(f"secret {secret_id} holds JSON that is not an object")
    missing = [k for k in _REQUIRED if not isinstance(creds.get(k), str) or not creds[k]]
    if missing:
        raise ConfigError(
            f"secret {secret_id} lacks {', '.join(missing)}",
            hint="RDS-style credentials need username, password and host (port and dbname "
            "default to 5432 and postgres)",
        )
    engine = str(creds.get("engine") or "postgres")
    if engine not in _POSTGRES_ENGINES:
        raise ConfigError(
            f"secret {secret_id} is for a {engine[:40]} database; aidlc's metadata needs "
            "PostgreSQL (or SQLite)"
        )
    port = creds.get("port", 5432)
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise ConfigError(f"secret {secret_id} has a port that is not a number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"secret {secret_id} has port {port}, outside 1-65535")
    dbname = creds.get("dbname") or "postgres"
    sslmode = creds.get("sslmode") or "require"
    if not isinstance(dbname, str) or not isinstance(sslmode, str):
        raise ConfigError(f"secret {secret_id} has a dbname or sslmode that is not text")
    url = URL.create(
        "postgresql+psycopg",
        username=creds["username"],
        password=creds["password"],
        host=creds["host"],
        port=port,
        database=dbname,
        query={"sslmode": sslmode},
    )
    return url.render_as_string(hide_password=False)


def _fetch(
    secret_id: str,
    client: Any,
    *,
    holds: str = "the database URL",
    named_by: str = "metadata.url_secret and metadata.region in aidlc.yaml",
) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.get_secret_value(SecretId=secret_id)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "") or "error")
        if code == "ResourceNotFoundException":
            raise ConfigError(
                f"AWS Secrets Manager has no secret {secret_id} (ResourceNotFoundException)",
                hint=f"create it with {holds}, or fix {named_by}",
            ) from None
        raise ConfigError(
            f"cannot read secret {secret_id} from AWS Secrets Manager ({code})",
            hint="check that this role may secretsmanager:GetSecretValue on it (and "
            "kms:Decrypt on its key) and that the secret is not deleted",
        ) from None
    except BotoCoreError as error:
        raise ConfigError(
            f"cannot reach AWS Secrets Manager for secret {secret_id} ({type(error).__name__})",
            hint="check metadata.region, metadata.endpoint_url and the AWS credentials",
        ) from None
    text = response.get("SecretString")
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(
            f"secret {secret_id} has no SecretString",
            hint=f"store {holds} as text, not binary",
        )
    return text


def database_url(
    secret_id: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    client: Any = None,
) -> str:
    """The metadata database URL held by the secret `secret_id` (a name or ARN), fetched on the
    first call and served from memory for the rest of the process.

    Every failure is a `ConfigError` naming the secret and the AWS error code, never its value.
    """
    key = (secret_id, region, endpoint_url)
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        text = _fetch(secret_id, client or secrets_client(region, endpoint_url))
        url = url_from_secret(text, secret_id=secret_id)
        _cache[key] = url
        return url


def token_from_secret(
    secret_id: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    client: Any = None,
) -> str:
    """The aidlc token held by the secret `secret_id`, for services (the validation Lambda)
    that must not receive it through their environment or Terraform state. Not cached: a
    re-issued token is picked up on the next call."""
    text = _fetch(
        secret_id,
        client or secrets_client(region, endpoint_url),
        holds="an aidlc token",
        named_by="AIDLC_TOKEN_SECRET",
    )
    token = text.strip()
    if not token.startswith("aidlc_") or any(c.isspace() for c in token) or len(token) > 200:
        raise ConfigError(
            f"secret {secret_id} does not hold an aidlc token",
            hint="put the token `aidlc user add` or `aidlc token create` printed, and nothing else",
        )
    return token


def forget_cached_urls() -> None:
    """Drop the URLs cached in this process, so the next open reads the secrets again (after a
    password rotation)."""
    with _lock:
        _cache.clear()
