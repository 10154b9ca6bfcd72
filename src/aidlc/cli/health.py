"""`aidlc health`: probe a running server's liveness endpoint (the container image's HEALTHCHECK).

Kept to the standard library so a probe every few seconds costs little more than starting the CLI.
"""

from __future__ import annotations

import http.client
import ssl
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from aidlc.errors import UsageError, ValidationFailed

DEFAULT_URL = "http://127.0.0.1:8080/healthz"


def probe(url: str, *, timeout: float = 3.0, ca_file: Path | None = None) -> int:
    """GET `url` and return its HTTP status; raise ValidationFailed when nothing answers.

    >>> probe("ftp://127.0.0.1/healthz")
    Traceback (most recent call last):
    ...
    aidlc.errors.UsageError: --url must be an http:// or https:// URL, not 'ftp://127.0.0.1/healthz'
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url must be an http:// or https:// URL, not {url[:200]!r}")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"--url has an invalid port: {url[:200]!r}") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        conn = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "aidlc-health"})
        return conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        raise ValidationFailed(
            f"{url} is not answering ({type(exc).__name__}: {exc})",
            hint="is `aidlc serve` running and listening there?",
        ) from None
    finally:
        conn.close()


def health(
    url: Annotated[str, typer.Option("--url", help="Liveness URL to probe.")] = DEFAULT_URL,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, max=60, help="Seconds to wait for an answer.")
    ] = 3.0,
    ca_file: Annotated[
        Path | None,
        typer.Option("--ca-file", help="PEM bundle to trust for an https:// URL."),
    ] = None,
) -> None:
    """Check that a server answers its liveness endpoint: exit 0 on HTTP 200, else 1.

    The API image's HEALTHCHECK runs `aidlc health`; it needs no token and opens no workspace.
    """
    status = probe(url, timeout=timeout, ca_file=ca_file)
    if status != 200:
        raise ValidationFailed(f"{url} answered HTTP {status}, not 200")
    typer.echo(f"{url}: ok")
