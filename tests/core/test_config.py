"""`aidlc.yaml`: a bad file gets one clear message naming the problem."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aidlc.core.config import load_config, parse_config, render_config, render_default_config
from aidlc.errors import ConfigError


def test_the_default_config_is_valid_and_documented():
    text = render_default_config("demo")
    config = parse_config(yaml.safe_load(text))
    assert config.keys.provider == "file" and config.store.backend == "local"
    assert text.count("#") > 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("keys: [1, 2", "not valid YAML at line"),
        ("- a\n- b\n", "must be a mapping"),
        ("keys:\n  provider: vault\n", "keys.provider"),
        ("store:\n  backend: s3\n", "store.bucket is not set"),
        ("keys:\n  provider: kms\n", "kms_key_id"),
        ("metadata:\n  url: postgresql://u:hunter2@db/aidlc\n", "contains a password"),
        ("colour: blue\n", "colour: Extra inputs"),
        ("version: 2\n", "version"),
        ("store:\n  segment_size: 1\n", "store.segment_size"),
    ],
)
def test_malformed_config_gives_a_clear_error(tmp_path, content, message):
    path = tmp_path / "aidlc.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)
    assert "hunter2" not in str(info.value)


def test_missing_huge_and_binary_files(tmp_path):
    with pytest.raises(ConfigError, match="aidlc init"):
        load_config(tmp_path / "aidlc.yaml")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * (2 << 20))
    with pytest.raises(ConfigError, match="at most 1 MiB"):
        load_config(big)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError):
        load_config(binary)


def test_settings_override_sections():
    text = render_config("x", {"metadata": {"url_env": "DB_URL"}})
    assert parse_config(yaml.safe_load(text)).metadata.url_env == "DB_URL"
    with pytest.raises(ConfigError):
        render_config("x", {"store": {"backend": "ftp"}})


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
        max_leaves=20,
    )
)
def test_any_yaml_value_is_accepted_or_refused_with_config_error(value):
    try:
        config = parse_config(value)
    except ConfigError as exc:
        assert str(exc)
    else:
        assert parse_config(config.model_dump()) == config


def test_metadata_url_from_secrets_manager_is_configured_by_secret_id_and_region():
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:aidlc/prod/database-AbCdEf"
    config = parse_config({"metadata": {"url_secret": arn, "region": "eu-west-1"}})
    assert config.metadata.url_secret == arn
    assert config.metadata.region == "eu-west-1" and config.metadata.endpoint_url is None
    assert config.metadata.url_env is None


def test_metadata_url_env_and_url_secret_are_mutually_exclusive():
    raw = {"metadata": {"url_env": "DB_URL", "url_secret": "aidlc/prod/database"}}
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert "metadata.url_env and metadata.url_secret are both set" in str(info.value)


@pytest.mark.parametrize(
    ("secret_id", "message"),
    [
        ("", "at least 1 character"),
        ("a b", "should match pattern"),
        ("postgresql+psycopg://u:hunter2@db/aidlc", "is a URL; name the AWS Secrets Manager"),
    ],
)
def test_metadata_url_secret_must_be_a_secret_id_not_a_url(secret_id, message):
    with pytest.raises(ConfigError) as info:
        parse_config({"metadata": {"url_secret": secret_id}})
    assert "metadata.url_secret: " in str(info.value) and message in str(info.value)
    assert "hunter2" not in str(info.value)
