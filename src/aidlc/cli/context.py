"""What every command shares: finding the workspace, reading the token, printing results.

Kept free of heavy imports so that `aidlc --help` stays fast.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aidlc.errors import AuthenticationFailed, ConfigError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from aidlc.core.workspace import Workspace

# Names of environment variables, not secrets (hence the nosec).
TOKEN_ENV = "AIDLC_TOKEN"  # noqa: S105  # nosec B105
TOKEN_FILE_ENV = "AIDLC_TOKEN_FILE"  # noqa: S105  # nosec B105
WORKSPACE_ENV = "AIDLC_WORKSPACE"
DEFAULT_TOKEN_FILE = Path("~/.config/aidlc/token")

_state: dict[str, Any] = {"workspace": None}


def set_workspace_option(path: Path | None) -> None:
    _state["workspace"] = path


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def find_workspace() -> Path:
    """The `--workspace` option, else $AIDLC_WORKSPACE, else the nearest folder upwards holding
    an `aidlc.yaml`."""
    given = _state["workspace"] or os.environ.get(WORKSPACE_ENV)
    if given:
        return Path(given).expanduser()
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "aidlc.yaml").is_file():
            return folder
    raise ConfigError(
        "no workspace here",
        hint="pass --workspace DIR, set AIDLC_WORKSPACE, or run `aidlc init DIR` first",
    )


def read_token() -> str:
    """$AIDLC_TOKEN, else the credentials file ($AIDLC_TOKEN_FILE or ~/.config/aidlc/token),
    which must be readable by its owner only."""
    value = os.environ.get(TOKEN_ENV)
    if value:
        return value.strip()
    path = Path(os.environ.get(TOKEN_FILE_ENV) or DEFAULT_TOKEN_FILE).expanduser()
    try:
        info = path.stat()
    except FileNotFoundError:
        raise AuthenticationFailed(
            "no token given",
            hint=f"set {TOKEN_ENV}, or put the token in {path} with mode 0600",
        ) from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise AuthenticationFailed(
            f"credentials file {path} is readable by others",
            hint=f"run `chmod 600 {path}`; the token in it should be considered exposed",
        )
    if info.st_size > 4096:
        raise AuthenticationFailed(f"credentials file {path} is too large to hold a token")
    return path.read_text(encoding="utf-8", errors="replace").strip()


def open_workspace(*, authenticate: bool = True) -> Workspace:
    from aidlc.core.audit import new_request_id
    from aidlc.core.workspace import Workspace

    new_request_id()
    token = read_token() if authenticate else None
    return Workspace.open(find_workspace(), token=token)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (reports name people, tokens and
    findings); a link is refused, and an existing file is narrowed to 0600."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as sink:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        sink.write(text)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def parse_version_ref(ref: str) -> tuple[str, int | None]:
    """`NAME@V` or `NAME` (latest)."""
    name, sep, version = ref.rpartition("@")
    if not sep:
        return ref, None
    if not version.isdigit():
        raise UsageError(f"{ref!r}: a version is a number, as in NAME@3")
    return name, int(version)
