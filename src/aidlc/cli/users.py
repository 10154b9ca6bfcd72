"""`aidlc user ...` and `aidlc token ...`: principals, roles and API tokens (admin only)."""

from __future__ import annotations

from typing import Annotated

import typer

from aidlc.cli.context import console, emit_json, open_workspace

user_app = typer.Typer(help="Manage users and service accounts (admin).", no_args_is_help=True)
token_app = typer.Typer(help="Issue, list and revoke API tokens (admin).", no_args_is_help=True)

ROLE_HELP = (
    "Role to grant; repeat for several: admin, data-steward, trainer, approver, inference, "
    "monitor, auditor."
)


@user_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Principal name (a-z, 0-9, '.', '_', '-').")],
    role: Annotated[list[str], typer.Option("--role", "-r", help=ROLE_HELP)],
    service: Annotated[
        bool, typer.Option("--service", help="A service account, not a person.")
    ] = False,
    expires_days: Annotated[
        int | None,
        typer.Option(help="Days until the first token expires (default: auth.token_ttl_days)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Add a principal with one or more roles and print its first token (shown once)."""
    from aidlc.core import principals

    with open_workspace() as ws:
        info, token = principals.add(
            ws, name, role, kind="service" if service else "user", expires_days=expires_days
        )
    if json_out:
        emit_json({**info.to_json(), "token": token})
        return
    out = console()
    out.print(f"Added {info.kind} [bold]{info.name}[/] with roles {', '.join(info.roles)}.")
    out.print("Token (shown once, store it now):\n")
    out.print(f"  {token}\n", markup=False)


@user_app.command("list")
def list_(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List principals with their roles, last use and usable tokens."""
    from rich.table import Table

    from aidlc.core import principals

    with open_workspace() as ws:
        items = principals.list_all(ws)
    if json_out:
        emit_json([i.to_json() for i in items])
        return
    table = Table("name", "kind", "roles", "status", "tokens", "last used", "created")
    for i in items:
        table.add_row(
            i.name,
            i.kind,
            ", ".join(i.roles),
            "disabled" if i.disabled else "active",
            str(i.active_tokens),
            f"{i.last_used_at:%Y-%m-%d %H:%M}" if i.last_used_at else "never",
            f"{i.created_at:%Y-%m-%d}",
        )
    console().print(table)


@user_app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="Principal to disable.")]) -> None:
    """Disable a principal; every token it holds stops working at once."""
    from aidlc.core import principals

    with open_workspace() as ws:
        principals.disable(ws, name)
    console().print(f"Disabled {name}.")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Principal that receives the token.")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    expires_days: Annotated[
        int | None,
        typer.Option(help="Days until expiry; 0 = never (default: auth.token_ttl_days)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Issue another token for a principal (shown once)."""
    from aidlc.core import principals

    with open_workspace() as ws:
        info, token = principals.create_token(ws, name, label=label, expires_days=expires_days)
    if json_out:
        emit_json({**info.to_json(), "token": token})
        return
    out = console()
    expires = f"{info.expires_at:%Y-%m-%d}" if info.expires_at else "never"
    out.print(f"Token {info.id} for {name} (expires {expires}), shown once:\n")
    out.print(f"  {token}\n", markup=False)


@token_app.command("list")
def token_list(
    name: Annotated[str | None, typer.Argument(help="Only this principal's tokens.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List tokens by id (never their values)."""
    from rich.table import Table

    from aidlc.core import principals

    with open_workspace() as ws:
        items = principals.list_tokens(ws, name)
    if json_out:
        emit_json([i.to_json() for i in items])
        return
    table = Table("id", "principal", "label", "created", "expires", "revoked", "last used")

    def day(d: object) -> str:
        return f"{d:%Y-%m-%d}" if d else "-"

    for t in items:
        table.add_row(
            t.id,
            t.principal,
            t.label,
            day(t.created_at),
            day(t.expires_at) if t.expires_at else "never",
            day(t.revoked_at),
            day(t.last_used_at),
        )
    console().print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="Token id from `token list`.")],
) -> None:
    """Revoke a token; it fails authentication from now on."""
    from aidlc.core import principals

    with open_workspace() as ws:
        principals.revoke_token(ws, token_id)
    console().print(f"Revoked token {token_id}.")
