"""The console's routes inside the inference server's app: sign-in and sign-out, the pages (run
in a thread pool as the signed-in principal) and the POST actions, each CSRF- and Origin-checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from aidlc.console import layout, pages, sessions
from aidlc.console.markup import Page
from aidlc.console.static import CSS
from aidlc.errors import AidlcError, AuthenticationFailed, InvalidInput, PermissionDenied

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace
    from aidlc.serve.app import Server

_FORM_LIMIT = 16_384
_QUERY_VALUE_LIMIT = 500
# `next` after sign-in: a console path and nothing else (no scheme, no host, no `//`, no `..`).
_NEXT = re.compile(r"^/console(?:/[A-Za-z0-9._~%/-]*)?(?:\?[A-Za-z0-9._~%&=+@:-]*)?\Z")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: `value` when it is a console path, else the overview.

    >>> safe_next("/console/models?x=1"), safe_next("//evil.example"), safe_next("/console/../x")
    ('/console/models?x=1', '/console', '/console')
    """
    if not value or len(value) > 500 or not _NEXT.match(value):
        return "/console"
    if "//" in value or ".." in value:
        return "/console"
    return value


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status)


def _see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


def _cross_site(request: Request) -> bool:
    """Whether a POST comes from another site: the browser says so in Sec-Fetch-Site, or the
    Origin is not ours. Under the server's `Referrer-Policy: no-referrer` Chromium sends
    `Origin: null` even for our own forms; that counts as ours only when Sec-Fetch-Site (which
    no script can set) says `same-origin`."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None or origin == _own_origin(request):
        return False
    return not (origin == "null" and site == "same-origin")


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form body (at most 16 KiB), first value of each field; nothing for any
    other body, so a POST without a form fails its CSRF check."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _FORM_LIMIT:
            raise InvalidInput("the form is too large")
        chunks.append(chunk)
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the form is not UTF-8") from None
    try:
        parsed = parse_qs(text, keep_blank_values=True, max_num_fields=50)
    except ValueError:  # more than 50 fields
        raise InvalidInput("the form has too many fields") from None
    return {key: values[0] for key, values in parsed.items()}


def _query(request: Request) -> dict[str, str]:
    return {k[:100]: v[:_QUERY_VALUE_LIMIT] for k, v in list(request.query_params.items())[:50]}


def _with_flash(path: str, kind: str, message: str) -> str:
    return f"{path}?{urlencode({kind: message[:400]})}"


def mount(app: FastAPI, server: Server) -> None:
    """Add the console's routes under /console to `app`."""
    router = APIRouter(include_in_schema=False)
    cookie_kwargs: dict[str, Any] = {
        "httponly": True,
        "samesite": "strict",
        "path": "/console",
        "secure": server.tls,
    }

    async def signed_in(request: Request) -> sessions.Signed | None:
        session_id = request.cookies.get(sessions.COOKIE)
        if not session_id:
            return None
        try:
            return await run_in_threadpool(sessions.resume, server.ws, session_id)
        except AuthenticationFailed:
            return None

    def to_login(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = _see_other("/console/login?" + urlencode({"next": safe_next(target)}))
        if request.cookies.get(sessions.COOKIE):
            response.delete_cookie(sessions.COOKIE, **cookie_kwargs)
        return response

    def refused(
        signed: sessions.Signed | None, status: int, title: str, message: str
    ) -> HTMLResponse:
        principal = signed.principal if signed else None
        csrf = signed.csrf if signed else ""
        return _html(layout.problem(title, message, principal=principal, csrf=csrf), status)

    def deny_forgery(signed: sessions.Signed | None, request: Request, why: str) -> HTMLResponse:
        server.ws.audit.record(
            actor=signed.principal.name if signed else "anonymous",
            action="console.post",
            resource=request.url.path[:200],
            outcome="denied",
            details={"reason": why},
        )
        return refused(
            signed, 403, "Refused", f"This form was refused: {why}. Reload the page and try again."
        )

    async def checked_post(
        request: Request,
    ) -> tuple[sessions.Signed, dict[str, str]] | Response:
        """The session and form of a POST action, or the response refusing it."""
        signed = await signed_in(request)
        if signed is None:
            return to_login(request)
        if _cross_site(request):
            return await run_in_threadpool(
                deny_forgery, signed, request, "it came from another site"
            )
        try:
            form = await _form(request)
        except InvalidInput as exc:
            return refused(signed, 400, "Bad request", exc.message)
        session_id = request.cookies.get(sessions.COOKIE, "")
        if not sessions.csrf_ok(session_id, form.get("csrf")):
            return await run_in_threadpool(
                deny_forgery, signed, request, "its CSRF token is missing or wrong"
            )
        return signed, form

    # -- assets and sign-in ------------------------------------------------------------------

    @router.get("/console/static/console.css")
    async def stylesheet() -> Response:
        return Response(CSS, media_type="text/css; charset=utf-8")

    @router.get("/console/login")
    async def login_page(request: Request) -> Response:
        next_path = safe_next(request.query_params.get("next"))
        if await signed_in(request) is not None:
            return _see_other(next_path)
        return _html(layout.login(next_path=next_path))

    @router.post("/console/login")
    async def login(request: Request) -> Response:
        if _cross_site(request):
            await run_in_threadpool(
                server.ws.audit.record,
                actor="anonymous",
                action="console.signin",
                resource="console",
                outcome="denied",
                details={"reason": "cross-site sign-in form"},
            )
            return _html(layout.problem("Refused", "A sign-in from another site is refused."), 403)
        client = request.client.host if request.client else "unknown"
        # Each attempt counts against the client address, as the API's unauthenticated calls do.
        decision = server.limiter.hit(f"console-login:{client}")
        if not decision.allowed:
            return _html(
                layout.login(
                    next_path="/console",
                    message=f"Too many sign-in attempts; wait {decision.retry_after} s.",
                ),
                429,
            )
        try:
            form = await _form(request)
        except InvalidInput as exc:
            return _html(layout.login(next_path="/console", message=exc.message), 400)
        next_path = safe_next(form.get("next"))
        token = form.get("token", "").strip()
        try:
            session_id, _ = await run_in_threadpool(sessions.sign_in, server.ws, token)
        except AuthenticationFailed:
            return _html(
                layout.login(
                    next_path=next_path,
                    message="That token was not accepted: it is unknown, revoked or expired, or "
                    "its principal is disabled.",
                ),
                401,
            )
        response = _see_other(next_path)
        response.set_cookie(
            sessions.COOKIE, session_id, max_age=int(sessions.ABSOLUTE.total_seconds()),
            **cookie_kwargs,
        )  # fmt: skip
        return response

    @router.post("/console/logout")
    async def logout(request: Request) -> Response:
        checked = await checked_post(request)
        if isinstance(checked, Response):
            return checked
        signed, _ = checked
        session_id = request.cookies.get(sessions.COOKIE, "")
        await run_in_threadpool(sessions.sign_out, server.ws, session_id, signed.principal)
        response = _see_other("/console/login")
        response.delete_cookie(sessions.COOKIE, **cookie_kwargs)
        return response

    # -- pages -------------------------------------------------------------------------------

    async def show(
        request: Request, key: str, function: str = "page", arg: str | int | None = None
    ) -> Response:
        signed = await signed_in(request)
        if signed is None:
            return to_login(request)
        entry = pages.BY_KEY[key]
        query = {**_query(request), "csrf": signed.csrf}

        def build() -> tuple[int, str]:
            ws = server.ws.acting_as(signed.principal)
            try:
                if entry.action is not None:
                    ws.authorize(entry.action, f"console:{entry.path}")
                page_fn = pages.load(key, function)
                if page_fn is None:
                    return 404, layout.problem(
                        "Not available",
                        f"The {entry.label} page is not available in this installation.",
                        principal=signed.principal,
                        csrf=signed.csrf,
                        current=key,
                    )
                if arg is not None:
                    page: Page = page_fn(ws, arg, query)
                elif entry.server:
                    page = page_fn(ws, query, server=server)
                else:
                    page = page_fn(ws, query)
            except AuthenticationFailed:
                raise
            except PermissionDenied as exc:
                return 403, _problem_in_frame(signed, "Not allowed", exc, key)
            except AidlcError as exc:
                status = exc.http_status if 400 <= exc.http_status < 600 else 400
                return status, _problem_in_frame(signed, "Cannot show this page", exc, key)
            return 200, layout.render(
                page, principal=signed.principal, csrf=signed.csrf, current=key, query=query
            )

        try:
            status, body = await run_in_threadpool(build)
        except AuthenticationFailed:
            return to_login(request)
        return _html(body, status)

    def page_route(entry: pages.Entry) -> None:
        async def handler(request: Request) -> Response:
            return await show(request, entry.key)

        router.add_api_route(entry.path, handler, methods=["GET"], name=f"console-{entry.key}")

    for entry in pages.PAGES:
        page_route(entry)

    @router.get("/console/datasets/{name}")
    async def dataset(name: str, request: Request) -> Response:
        return await show(request, "datasets", "dataset_page", name)

    @router.get("/console/models/{name}")
    async def model(name: str, request: Request) -> Response:
        return await show(request, "models", "model_page", name)

    @router.get("/console/audit/{seq:int}")
    async def event(seq: int, request: Request) -> Response:
        return await show(request, "audit", "event_page", seq)

    # -- actions -----------------------------------------------------------------------------

    def action_route(
        path: str,
        action: str,
        back: Callable[[str], str],
        work: Callable[[Workspace, str, dict[str, str]], str],
    ) -> None:
        """POST `path`: CSRF and Origin checked, the role checked (403 page when it lacks
        `action`), then `work` as the principal; 303 back to `back(name)` with its message."""

        async def handler(name: str, request: Request) -> Response:
            checked = await checked_post(request)
            if isinstance(checked, Response):
                return checked
            signed, form = checked

            def run() -> tuple[str, str] | PermissionDenied:
                ws = server.ws.acting_as(signed.principal)
                try:
                    ws.authorize(action, f"console:{request.url.path[:150]}")
                except PermissionDenied as exc:
                    return exc
                try:
                    return "ok", work(ws, name, form)
                except AidlcError as exc:  # refused by the service (audited there): say why
                    return "error", exc.message

            outcome = await run_in_threadpool(run)
            if isinstance(outcome, PermissionDenied):
                return _html(_problem_in_frame(signed, "Not allowed", outcome, None), 403)
            kind, message = outcome
            return _see_other(_with_flash(back(name), kind, message))

        router.add_api_route(path, handler, methods=["POST"], name=f"console-post-{path}")

    from aidlc.console.pages import deployments, models

    action_route(
        "/console/models/{name}/approve",
        "model.approve",
        lambda name: f"/console/models/{quote(name, safe='')}",
        models.approve,
    )
    action_route(
        "/console/models/{name}/reject",
        "model.reject",
        lambda name: f"/console/models/{quote(name, safe='')}",
        models.reject,
    )
    action_route(
        "/console/deployments/{name}/stop",
        "model.deploy",
        lambda _: "/console/deployments",
        deployments.stop,
    )
    action_route(
        "/console/deployments/{name}/rollback",
        "model.deploy",
        lambda _: "/console/deployments",
        deployments.rollback,
    )

    # Any other console address: sign in first, then a page saying it does not exist.
    @router.get("/console/{rest:path}")
    async def unknown(rest: str, request: Request) -> Response:
        signed = await signed_in(request)
        if signed is None:
            return to_login(request)
        return refused(signed, 404, "Not found", "There is no console page at this address.")

    app.include_router(router)


def _problem_in_frame(
    signed: sessions.Signed, title: str, exc: AidlcError, current: str | None
) -> str:
    message = exc.message + (f" ({exc.hint})" if exc.hint else "")
    return layout.problem(
        title, message, principal=signed.principal, csrf=signed.csrf, current=current
    )
