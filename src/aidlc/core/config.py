"""`aidlc.yaml`: the workspace configuration, validated by pydantic.

The file chooses backends and policies; it never holds a secret. Secrets (a database password,
a passphrase) come from the environment or AWS Secrets Manager, named here.
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
    """The SQLAlchemy database holding metadata and the audit log.

    Its URL is `url`, or read at start from the environment variable `url_env` names, or from
    the AWS Secrets Manager secret `url_secret` names (in `region`, through `endpoint_url`).
    """

    url: str = f"sqlite:///{STATE_DIR}/aidlc.db"
    url_env: str | None = None
    # A secret name or ARN; its SecretString is the URL or RDS-style JSON credentials.
    url_secret: str | None = Field(
        default=None, min_length=1, max_length=2048, pattern=r"^[A-Za-z0-9/_+=.@:-]+$"
    )
    region: str | None = None
    endpoint_url: str | None = None

    @field_validator("url_secret")
    @classmethod
    def _a_name_not_a_url(cls, value: str | None) -> str | None:
        # A URL here would put its password in this file and in error messages.
        if value is not None and "://" in value:
            raise ValueError(
                "is a URL; name the AWS Secrets Manager secret (its name or ARN) that holds it"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> MetadataConfig:
        if self.url_env and self.url_secret:
            raise ValueError(
                "metadata.url_env and metadata.url_secret are both set; keep the one that "
                "holds the database URL"
            )
        return self

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
    # Compute a binary classifier's probabilities for logged requests (one more predict_proba
    # per request), so monitoring can report ROC AUC; answers carry them only when asked.
    scores: bool = False


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


_DURATION = re.compile(r"\s*(\d{1,7})\s*(s|m|h|d|w)\s*")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str) -> int:
    """Seconds in a duration such as "90s", "30m", "24h", "7d" or "2w".

    >>> parse_duration("24h")
    86400
    """
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{str(value)[:40]!r} is not a duration such as '30m', '24h' or '7d'")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 0 < seconds <= 366 * 86400:
        raise ValueError(f"{value!r} must be between 1 second and 366 days")
    return seconds


class _Duration(_Section):
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class DriftConfig(_Section):
    """How per-feature drift is decided (defaults and their sources: docs/monitoring.md)."""

    psi_bins: int = Field(default=10, ge=2, le=100)
    small_sample: int = Field(default=1000, ge=10, le=10_000_000)
    p_value: float = Field(default=0.05, gt=0, lt=1)
    wasserstein_threshold: float = Field(default=0.1, gt=0, le=100)
    jensenshannon_threshold: float = Field(default=0.1, gt=0, le=1)
    dataset_share: float = Field(default=0.5, gt=0, le=1)


class ScheduleConfig(_Duration):
    """A monitor run on a cron schedule (AWS `cron(...)` or five fields)."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    cron: str = Field(min_length=1, max_length=200)
    model: str = Field(default="*", min_length=1, max_length=100)
    window: str = "24h"

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        return cls._duration(value)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from aidlc.monitor.schedule import parse_cron

        parse_cron(value)
        return value


class MonitorConfig(_Duration):
    """`aidlc monitor`: windows, drift decisions, performance tolerance and schedules."""

    window: str = "24h"
    min_rows: int = Field(default=100, ge=1, le=10_000_000)
    performance_drop: float = Field(default=0.05, ge=0, le=1)
    drift: DriftConfig = DriftConfig()
    schedules: tuple[ScheduleConfig, ...] = ()

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        return cls._duration(value)

    @model_validator(mode="after")
    def _unique(self) -> MonitorConfig:
        names = [s.name for s in self.schedules]
        if len(names) != len(set(names)):
            raise ValueError("schedule names must be unique")
        return self


class AlertRule(_Duration):
    """Raise an alert of `severity` when a monitor `metric` is above (or below) a value."""

    name: str = Field(min_length=1, max_length=100)
    metric: Literal[
        "drift_score",
        "psi",
        "drifted_share",
        "prediction_drift",
        "ood_rate",
        "anomaly_rate",
        "null_rate",
        "schema_violation_rate",
        "performance_drop",
    ]
    above: float | None = None
    below: float | None = None
    severity: Literal["INFO", "WARNING", "CRITICAL"] = "WARNING"
    cooldown: str | None = None

    @field_validator("cooldown")
    @classmethod
    def _cooldown(cls, value: str | None) -> str | None:
        return None if value is None else cls._duration(value)

    @model_validator(mode="after")
    def _bound(self) -> AlertRule:
        if (self.above is None) == (self.below is None):
            raise ValueError(f"rule {self.name!r} needs exactly one of `above` and `below`")
        return self


class AlertSink(_Section):
    """Where alerts go: log, a Slack-style webhook, SMTP email or an SNS topic."""

    type: Literal["log", "webhook", "smtp", "sns"]
    min_severity: Literal["INFO", "WARNING", "CRITICAL"] = "INFO"
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # webhook
    url: str | None = None
    # smtp
    host: str | None = None
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    sender: str | None = None
    recipients: tuple[str, ...] = ()
    username: str | None = None
    password_env: str | None = None
    # sns
    topic_arn: str | None = None
    region: str | None = None
    endpoint_url: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> AlertSink:
        need = {
            "log": (),
            "webhook": ("url",),
            "smtp": ("host", "sender", "recipients"),
            "sns": ("topic_arn",),
        }[self.type]
        missing = [field for field in need if not getattr(self, field)]
        if missing:
            raise ValueError(f"a {self.type} sink needs {', '.join(missing)}")
        if self.url is not None:
            if not re.match(r"^https?://[^\s/]+", self.url):
                raise ValueError("webhook url must be an http(s) URL")
            if _URL_PASSWORD.match(self.url):
                raise ValueError("webhook url contains a password; use a secret path token")
        return self


def _default_rules() -> tuple[AlertRule, ...]:
    return (
        AlertRule(name="feature-drift", metric="drift_score", above=0.1, severity="WARNING"),
        AlertRule(name="dataset-drift", metric="drifted_share", above=0.5, severity="CRITICAL"),
        AlertRule(name="ood-burst", metric="ood_rate", above=0.05, severity="CRITICAL"),
        AlertRule(name="anomaly-burst", metric="anomaly_rate", above=0.1, severity="CRITICAL"),
        AlertRule(
            name="schema-violations", metric="schema_violation_rate", above=0.01, severity="WARNING"
        ),
        AlertRule(
            name="performance-drop", metric="performance_drop", above=0.05, severity="CRITICAL"
        ),
    )


class AlertsConfig(_Duration):
    """Alert rules, sinks and the cooldown that deduplicates repeats."""

    cooldown: str = "1h"
    rules: tuple[AlertRule, ...] = Field(default_factory=_default_rules)
    sinks: tuple[AlertSink, ...] = (AlertSink(type="log"),)

    @field_validator("cooldown")
    @classmethod
    def _cooldown(cls, value: str) -> str:
        return cls._duration(value)


class CostsConfig(_Section):
    """Unit prices for cost reporting (cost per 1,000 predictions and per training run)."""

    currency: str = Field(default="USD", min_length=1, max_length=10)
    cpu_hour: float = Field(default=0.0, ge=0, le=1e6)
    gb_month: float = Field(default=0.0, ge=0, le=1e6)


class LineageConfig(_Section):
    """Where OpenLineage run events of ingest, training and monitoring runs go."""

    transport: Literal["file", "http", "none"] = "file"
    file: str = f"{STATE_DIR}/openlineage/events.jsonl"
    url: str | None = None
    api_key_env: str | None = None
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    namespace: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _http(self) -> LineageConfig:
        if self.transport == "http" and (
            not self.url or not re.match(r"^https?://[^\s/]+", self.url)
        ):
            raise ValueError("an http lineage transport needs an http(s) url")
        if self.url and _URL_PASSWORD.match(self.url):
            raise ValueError("lineage url contains a password; name a variable in api_key_env")
        return self


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
    monitor: MonitorConfig = MonitorConfig()
    alerts: AlertsConfig = AlertsConfig()
    costs: CostsConfig = CostsConfig()
    lineage: LineageConfig = LineageConfig()


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
  # that holds the URL (with its password) in `url_env`, or, on AWS, an AWS Secrets Manager
  # secret (name or ARN) in `url_secret`, with `region` (docs/aws.md).
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
    scores: false            # true: log binary classifiers' scores (monitoring's ROC AUC)
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

monitor:
  # `aidlc monitor run` compares this window of logged traffic with the training baseline.
  window: 24h
  min_rows: 100              # fewer logged rows: the verdict is "insufficient data"
  performance_drop: 0.05     # a primary metric this far below training is a breach
  drift:                     # defaults and their sources: docs/monitoring.md
    psi_bins: 10
    small_sample: 1000       # at or below, KS / chi-square p-values decide; above, effect sizes
    p_value: 0.05
    wasserstein_threshold: 0.1
    jensenshannon_threshold: 0.1
    dataset_share: 0.5       # this share of drifted features is dataset drift
  # Run by `aidlc serve` (and `aidlc monitor schedule`); AWS cron(...) or five fields:
  #   - name: nightly
  #     cron: "cron(0 2 * * ? *)"
  #     model: "*"
  schedules: []

alerts:
  cooldown: 1h               # a repeat of the same alert within this time is counted, not re-sent
  sinks:
    - type: log
  # rules: the defaults are listed in docs/monitoring.md

costs:
  currency: USD
  cpu_hour: 0.0              # price of one vCPU-hour
  gb_month: 0.0              # price of storing one GB for a month

lineage:
  # OpenLineage run events of ingest, training and monitoring runs: file (JSON lines),
  # http (POST to url; a bearer token from the variable api_key_env names) or none.
  transport: file
  file: .aidlc/openlineage/events.jsonl
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
