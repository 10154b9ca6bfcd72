"""`aidlc.yaml`: the workspace configuration, validated by pydantic.

The file chooses backends and policies; it never holds a secret. Secrets (a database password,
a passphrase) come from the environment, named here by variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aidlc.errors import ConfigError

CONFIG_FILE = "aidlc.yaml"
STATE_DIR = ".aidlc"

# A password inside a URL: scheme://user:password@host
_URL_PASSWORD = re.compile(r"^[a-z0-9+.-]+://[^/@:]+:[^/@]+@", re.IGNORECASE)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeysConfig(_Section):
    """Where the master keys live that wrap every data key."""

    provider: Literal["file", "kms"] = "file"
    file: str = f"{STATE_DIR}/keys/keyring.json"
    passphrase_env: str = "AIDLC_PASSPHRASE"  # noqa: S105 - the name of a variable
    kms_key_id: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    rotation_days: int = Field(default=365, ge=1, le=3650)

    @model_validator(mode="after")
    def _kms_needs_key(self) -> KeysConfig:
        if self.provider == "kms" and not self.kms_key_id:
            raise ValueError("keys.provider is 'kms' but keys.kms_key_id is not set")
        return self


class StoreConfig(_Section):
    """Where encrypted objects live."""

    backend: Literal["local", "s3"] = "local"
    path: str = f"{STATE_DIR}/objects"
    bucket: str | None = None
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    sse_kms_key_id: str | None = None
    segment_size: int = Field(default=1 << 20, ge=4096, le=64 << 20)

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> StoreConfig:
        if self.backend == "s3" and not self.bucket:
            raise ValueError("store.backend is 's3' but store.bucket is not set")
        return self


class MetadataConfig(_Section):
    """The SQLAlchemy database holding metadata and the audit log."""

    url: str = f"sqlite:///{STATE_DIR}/aidlc.db"
    url_env: str | None = None

    @field_validator("url")
    @classmethod
    def _no_password_in_file(cls, url: str) -> str:
        if _URL_PASSWORD.match(url):
            raise ValueError(
                "metadata.url contains a password; put the URL in an environment variable "
                "and name it in metadata.url_env instead"
            )
        return url


class AuthConfig(_Section):
    """Token policy."""

    token_ttl_days: int | None = Field(default=90, ge=1, le=3650)


class AuditConfig(_Section):
    """Audit log policy."""

    verify_max_age_days: int = Field(default=7, ge=1)


class DataConfig(_Section):
    """Limits of the data gate, so a hostile file costs bounded time, memory and disk."""

    max_file_bytes: int = Field(default=4 << 30, ge=1024)
    max_decompressed_bytes: int = Field(default=8 << 30, ge=1024)
    max_columns: int = Field(default=2000, ge=1, le=100_000)
    inbox_poll_seconds: float = Field(default=2.0, gt=0, le=3600)


class CanaryPolicy(_Section):
    """How a canary is judged: promoted after `promote_after` candidate requests without a breach,
    rolled back as soon as one of the limits is breached after `min_requests`."""

    promote_after: int = Field(default=500, ge=1, le=10_000_000)
    min_requests: int = Field(default=50, ge=1, le=1_000_000)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_latency_ratio: float = Field(default=3.0, gt=1)
    max_divergence: float = Field(default=0.2, ge=0, le=1)


class PredictionLogConfig(_Section):
    """Prediction logging for monitoring: sampled, batched, encrypted, off the request path."""

    sample_rate: float = Field(default=1.0, ge=0, le=1)
    batch_rows: int = Field(default=5000, ge=1, le=1_000_000)
    flush_seconds: float = Field(default=5.0, gt=0, le=3600)
    queue_rows: int = Field(default=200_000, ge=1, le=10_000_000)


class TracingConfig(_Section):
    """OpenTelemetry traces: off unless an exporter is named."""

    exporter: Literal["none", "otlp", "console"] = "none"
    endpoint: str = "http://127.0.0.1:4318/v1/traces"
    service_name: str = Field(default="aidlc", min_length=1, max_length=100)


class ServeConfig(_Section):
    """The inference server: request limits, rate limits, OOD policy, logging, rollouts."""

    max_body_bytes: int = Field(default=1 << 20, ge=1024, le=256 << 20)
    max_batch_rows: int = Field(default=1000, ge=1, le=1_000_000)
    rate_limit: str = "100/second"
    rate_limit_storage: str = "memory://"
    ood_action: Literal["flag", "reject"] = "flag"
    ood_z: float = Field(default=6.0, gt=0, le=1000)
    poll_seconds: float = Field(default=2.0, gt=0, le=3600)
    token_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    prediction_log: PredictionLogConfig = PredictionLogConfig()
    canary: CanaryPolicy = CanaryPolicy()
    tracing: TracingConfig = TracingConfig()

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        if not re.fullmatch(
            r"\s*\d{1,9}\s*(/|per)\s*(\d{1,6}\s*)?(second|minute|hour|day)s?\s*", value
        ):
            raise ValueError(f"{value[:60]!r} is not a rate such as '100/second' or '1000/minute'")
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        if not re.match(r"^(memory|redis|rediss|redis\+unix)://", value):
            raise ValueError("must be memory:// or a redis:// URI")
        if _URL_PASSWORD.match(value):
            raise ValueError(
                "rate_limit_storage contains a password; set it in AIDLC_RATE_LIMIT_STORAGE instead"
            )
        return value


class Config(_Section):
    """The whole `aidlc.yaml`."""

    version: Literal[1] = 1
    workspace: str = Field(default="aidlc", min_length=1, max_length=100)
    keys: KeysConfig = KeysConfig()
    store: StoreConfig = StoreConfig()
    metadata: MetadataConfig = MetadataConfig()
    auth: AuthConfig = AuthConfig()
    audit: AuditConfig = AuditConfig()
    data: DataConfig = DataConfig()
    serve: ServeConfig = ServeConfig()


MAX_CONFIG_BYTES = 1 << 20


def load_config(path: Path) -> Config:
    """Read and validate `aidlc.yaml`; every problem becomes one `ConfigError` naming the field.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "aidlc.yaml"
    >>> _ = p.write_text("version: 1\\nstore:\\n  backend: local\\n")
    >>> load_config(p).store.backend
    'local'
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ConfigError(
            f"no {CONFIG_FILE} at {path}", hint="run `aidlc init DIR` to create a workspace"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is {size} bytes; a configuration file is at most 1 MiB")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise ConfigError(f"{path} is not valid YAML{where}: {problem}") from None
    return parse_config(raw, source=str(path))


def parse_config(raw: Any, *, source: str = CONFIG_FILE) -> Config:
    """Validate an already-parsed configuration mapping."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping of sections, not {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {msg}")
        raise ConfigError(f"{source} is invalid: " + "; ".join(problems)) from None


def render_default_config(workspace_name: str) -> str:
    """The documented `aidlc.yaml` that `aidlc init` writes."""
    return f"""\
# aidlc workspace configuration. Documented in docs/configuration.md.
# This file chooses backends and policies. It never holds a secret: secrets come from
# environment variables named here (a passphrase, a database URL with a password).
version: 1
workspace: {workspace_name}

keys:
  # file: a local key ring (mode 0600). Set AIDLC_PASSPHRASE to protect it with a passphrase.
  # kms:  AWS KMS; set kms_key_id (and region / endpoint_url).
  provider: file
  file: .aidlc/keys/keyring.json
  passphrase_env: AIDLC_PASSPHRASE
  rotation_days: 365

store:
  # local: a folder; s3: a bucket (objects are encrypted by aidlc before upload,
  # and SSE-KMS is requested on top when sse_kms_key_id is set).
  backend: local
  path: .aidlc/objects
  segment_size: 1048576

metadata:
  # SQLite by default; for PostgreSQL leave `url` as is and name an environment variable
  # that holds the URL (with its password) in `url_env`.
  url: sqlite:///.aidlc/aidlc.db

auth:
  token_ttl_days: 90

audit:
  verify_max_age_days: 7

data:
  # Limits of the data gate: larger files are refused before parsing (exit 2).
  max_file_bytes: 4294967296          # 4 GiB as given
  max_decompressed_bytes: 8589934592  # 8 GiB after gunzip (stops gzip bombs)
  max_columns: 2000
  inbox_poll_seconds: 2.0

serve:
  # The inference server (`aidlc serve`). Requests larger than these are refused (413 / 422).
  max_body_bytes: 1048576
  max_batch_rows: 1000
  # Per-token rate limit; memory:// is per process. With several workers or replicas use
  # redis://host:6379 (a URL with a password goes in AIDLC_RATE_LIMIT_STORAGE instead).
  rate_limit: 100/second
  rate_limit_storage: memory://
  # Rows outside the training range or with |z| above ood_z are flagged; "reject" refuses them.
  ood_action: flag
  ood_z: 6.0
  poll_seconds: 2.0          # how often the server looks for a moved production alias
  token_cache_seconds: 5.0   # a revoked token stops working within this time
  prediction_log:
    sample_rate: 1.0
    batch_rows: 5000
    flush_seconds: 5.0
    queue_rows: 200000
  canary:
    promote_after: 500       # candidate requests without a breach before promotion
    min_requests: 50         # judged only after this many
    max_error_rate: 0.01
    max_latency_ratio: 3.0   # candidate p95 latency / production p95
    max_divergence: 0.2      # share of rows where candidate and production disagree
  tracing:
    exporter: none           # none | otlp | console
    endpoint: http://127.0.0.1:4318/v1/traces
    service_name: aidlc
"""


def render_config(
    workspace_name: str, settings: Mapping[str, Mapping[str, Any]] | None = None
) -> str:
    """The default `aidlc.yaml`, with whole sections overridden by `settings` (validated)."""
    text = render_default_config(workspace_name)
    if not settings:
        return text
    merged: dict[str, Any] = yaml.safe_load(text)
    for section, values in settings.items():
        current = merged.get(section)
        if isinstance(current, dict) and isinstance(values, Mapping):
            merged[section] = {**current, **values}
        else:
            merged[section] = values
    parse_config(merged, source="the given settings")
    header = "# aidlc workspace configuration. Documented in docs/configuration.md.\n"
    return header + yaml.safe_dump(merged, sort_keys=False)
