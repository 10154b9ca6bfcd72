"""moto's standalone server on loopback, for tests that talk to S3 and KMS over real HTTP.

Session-scoped server; clients get dummy credentials passed explicitly, so nothing here reads or
changes the process environment, and nothing patches boto3 in process.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("moto_server")
    if script.exists():
        return [str(script), "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start `moto_server` on a free loopback port; yield its URL; stop it after the session."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "server.log"
    # The server gets its own copy of the environment with dummy credentials, never ours.
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            _server_command(port), stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"moto_server exited early:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not answer within 30 s:\n{log.read_text()}")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def aws_client(moto_endpoint: str) -> Callable[[str], Any]:
    """Make a boto3 client for a service on the moto server, with explicit dummy credentials."""
    import boto3

    def make(service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=moto_endpoint, **CREDENTIALS)

    return make


@pytest.fixture
def kms_key(aws_client: Callable[[str], Any]) -> str:
    """The id of a fresh symmetric KMS key on the moto server."""
    response = aws_client("kms").create_key(Description="aidlc test key")
    return str(response["KeyMetadata"]["KeyId"])


@pytest.fixture
def s3_bucket(aws_client: Callable[[str], Any]) -> str:
    """The name of a fresh, empty S3 bucket on the moto server."""
    name = f"aidlc-test-{secrets.token_hex(6)}"
    aws_client("s3").create_bucket(Bucket=name)
    return name
