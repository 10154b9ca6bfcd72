"""The one exception hierarchy of aidlc, mapped once to CLI exit codes and once to HTTP statuses.

Messages are shown to users as they are: they must say what went wrong and what to do, and must
never contain a key, a token or any other secret.
"""

from __future__ import annotations


class AidlcError(Exception):
    """Base of every error aidlc raises on purpose."""

    exit_code = 2
    http_status = 400

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(AidlcError):
    """A command or function was called with arguments that cannot work."""


class ConfigError(AidlcError):
    """`aidlc.yaml` or the environment is missing, malformed or inconsistent."""


class InvalidInput(AidlcError):
    """Input (a file, a request body, an argument) is malformed or too large."""

    http_status = 422


class ValidationFailed(AidlcError):
    """Input was well formed but failed a quality gate or check."""

    exit_code = 1
    http_status = 422


class IntegrityError(AidlcError):
    """Stored bytes or records do not verify: tampering, corruption or truncation."""

    exit_code = 1
    http_status = 409


class KeyUnavailable(AidlcError):
    """A key cannot be loaded: missing file, unsafe permissions, wrong passphrase, KMS refused."""


class AuthenticationFailed(AidlcError):
    """No token, an unknown token, or a revoked, expired or disabled one."""

    exit_code = 3
    http_status = 401


class PermissionDenied(AidlcError):
    """The principal is known but none of its roles grants the action."""

    exit_code = 4
    http_status = 403


class NotFound(AidlcError):
    """The named object, version, principal or event does not exist."""

    exit_code = 5
    http_status = 404


class Conflict(AidlcError):
    """The change collides with existing state, e.g. a second write to an immutable object."""

    exit_code = 6
    http_status = 409


class Interrupted(AidlcError):
    """Work stopped on SIGTERM or SIGINT after saving what it had done; it can be resumed."""

    exit_code = 130
    http_status = 503
