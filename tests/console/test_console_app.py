"""The web console inside the inference app: sign-in, sessions, CSRF, role-filtered navigation,
approval with separation of duties, canary rollback, escaping and headers."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.console.conftest import csrf_of, sign_in
from tests.serve.conftest import Served

CONSOLE_CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGES = [
    "/console",
    "/console/datasets",
    "/console/datasets/breast-cancer",
    "/console/models",
    "/console/models/bc",
    "/console/deployments",
    "/console/monitoring",
    "/console/audit",
    "/console/audit/1",
    "/console/compliance",
    "/console/lineage",
    "/console/no-such-page",
]


def signed(client: Any, served: Served, who: str) -> str:
    """Sign `who` in; returns the CSRF token of the session."""
    assert sign_in(client, served.tokens[who]).status_code == 303
    return csrf_of(client.get("/console").text)


def events(served: Served, action: str) -> list[Any]:
    with served.open("auditor") as ws:
        return ws.audit.events(action=action)


def nav(html: str) -> list[str]:
    block = re.search(r'<nav class="main" aria-label="Console">(.*?)</nav>', html, re.S)
    assert block
    return re.findall(r"<a [^>]*>([^<]+)</a>", block.group(1))


def flash_of(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 303
    return parse_qs(urlsplit(response.headers["location"]).query)


# -- signing in --------------------------------------------------------------------------------


def test_every_console_page_redirects_to_sign_in_without_a_session(console: Any) -> None:
    client = console()
    for path in PAGES:
        response = client.get(path + "?x=1")
        assert response.status_code == 303, path
        assert response.headers["location"] == "/console/login?" + (
            "next=" + path.replace("/", "%2F") + "%3Fx%3D1"
        )
    assert client.get("/console/login").status_code == 200


def test_an_action_without_a_session_changes_nothing(console: Any, console_env: Served) -> None:
    client = console()
    response = client.post(
        "/console/models/bc/approve", data={"version": "4", "to": "staging", "reason": "x"}
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=")
    with console_env.open("approver") as ws:
        from aidlc.registry import versions

        assert versions.resolve(ws, "bc@4").status != "approved"


def test_sign_in_sets_a_strict_http_only_cookie_and_stores_only_its_hash(
    console: Any, console_env: Served
) -> None:
    from aidlc.core.meta import ConsoleSessionRecord

    client = console()
    response = sign_in(client, console_env.tokens["approver"], "/console/models")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/models"
    cookie = response.headers["set-cookie"]
    value = re.match(r"aidlc_console=([^;]+);", cookie)
    assert value
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/console", "samesite=strict"} <= flags
    assert "secure" not in flags
    with console_env.open("admin") as ws, ws.db.reading() as session:
        rows = session.query(ConsoleSessionRecord).all()
        assert [r.id_hash for r in rows] == [hashlib.sha256(value.group(1).encode()).hexdigest()]
        assert rows[0].expires_at - rows[0].created_at == timedelta(hours=8)
    signin = events(console_env, "console.signin")
    assert [(e.actor, e.outcome) for e in signin] == [("approver", "ok")]
    page = client.get("/console/models")
    assert page.status_code == 200
    assert "Signed in as <strong>approver</strong> (approver)" in page.text


def test_the_cookie_is_secure_when_the_server_runs_tls(console: Any, console_env: Served) -> None:
    client = console(tls=True)
    response = sign_in(client, console_env.tokens["auditor"])
    flags = {part.strip().lower() for part in response.headers["set-cookie"].split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/console"} <= flags
    assert client.get("/console").status_code == 200


def test_a_bad_token_is_refused_and_audited(console: Any, console_env: Served) -> None:
    client = console()
    response = sign_in(client, "aidlc_" + "x" * 43)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert "That token was not accepted" in response.text
    denied = [e for e in events(console_env, "auth.authenticate") if e.outcome == "denied"]
    assert denied[-1].details == {"reason": "unknown token"}
    assert client.get("/console").status_code == 303


def test_sign_in_attempts_are_rate_limited(console: Any) -> None:
    client = console(rate_limit="3/minute")
    codes = [sign_in(client, "aidlc_" + "y" * 43).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_next_never_leaves_the_console(console: Any, console_env: Served) -> None:
    client = console()
    token = console_env.tokens["auditor"]
    for target, expected in [
        ("https://evil.example/console", "/console"),
        ("//evil.example/console", "/console"),
        ("/console//evil.example", "/console"),
        ("/\\evil.example", "/console"),
        ("/console/../docs", "/console"),
        ("/console/audit?q=x", "/console/audit?q=x"),
    ]:
        assert sign_in(client, token, target).headers["location"] == expected, target
    # Already signed in, the sign-in page sends on to `next` under the same rule.
    again = client.get("/console/login", params={"next": "https://evil.example"})
    assert again.status_code == 303
    assert again.headers["location"] == "/console"


# -- CSRF and origin ---------------------------------------------------------------------------


def test_a_forged_post_is_refused_and_changes_nothing(console: Any, console_env: Served) -> None:
    from aidlc.registry import approval, versions

    client = console()
    csrf = signed(client, console_env, "approver")
    with console_env.open("approver") as ws:
        before = approval.aliases(ws, "bc")
    form = {"version": "4", "to": "production", "reason": "forged"}
    missing = client.post("/console/models/bc/approve", data=form)
    wrong = client.post("/console/models/bc/approve", data={**form, "csrf": "0" * 64})
    other = client.post("/console/models/bc/approve", data={**form, "csrf": csrf[:-1] + "x"})
    for response in (missing, wrong, other):
        assert response.status_code == 403
        assert "its CSRF token is missing or wrong" in response.text
    with console_env.open("approver") as ws:
        assert approval.aliases(ws, "bc") == before
        assert versions.resolve(ws, "bc@4").status == "registered"
    denied = events(console_env, "console.post")
    assert [(e.actor, e.outcome, e.resource) for e in denied] == [
        ("approver", "denied", "/console/models/bc/approve")
    ] * 3


def test_a_post_from_another_origin_is_refused(console: Any, console_env: Served) -> None:
    client = console()
    csrf = signed(client, console_env, "approver")
    form = {"version": "4", "to": "staging", "reason": "x", "csrf": csrf}
    response = client.post(
        "/console/models/bc/approve", data=form, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert "it came from another site" in response.text
    login = console().post(
        "/console/login",
        data={"token": console_env.tokens["approver"]},
        headers={"Origin": "null"},
    )
    assert login.status_code == 403
    assert "set-cookie" not in login.headers
    from_site = client.post(
        "/console/models/bc/approve", data=form, headers={"Sec-Fetch-Site": "same-site"}
    )
    assert from_site.status_code == 403
    # The same form from the console's own origin goes through; so does Chromium's
    # `Origin: null` (sent under Referrer-Policy: no-referrer) when Sec-Fetch-Site vouches for it.
    null_ours = client.post(
        "/console/models/bc/reject",
        data={"version": "3", "reason": "x", "csrf": csrf},
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    )
    assert flash_of(null_ours)["ok"] == ["Rejected bc@3."]
    ok = client.post(
        "/console/models/bc/approve", data=form, headers={"Origin": "http://testserver"}
    )
    assert flash_of(ok)["ok"] == ["Approved bc@4; aliases now: candidate, staging."]


# -- roles -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("auditor", ["Overview", "Models", "Deployments", "Monitoring", "Audit", "Compliance",
                     "Lineage"]),
        ("approver", ["Overview", "Models", "Deployments", "Monitoring", "Compliance", "Lineage"]),
        ("inference", ["Overview", "Models", "Deployments"]),
        ("steward", ["Overview", "Datasets"]),
    ],
)  # fmt: skip
def test_the_navigation_shows_only_pages_the_role_allows(
    console: Any, console_env: Served, who: str, expected: list[str]
) -> None:
    client = console()
    signed(client, console_env, who)
    page = client.get("/console")
    assert nav(page.text) == expected
    assert 'aria-current="page">Overview</a>' in page.text


def test_a_page_the_role_does_not_allow_is_a_403_page(console: Any, console_env: Served) -> None:
    client = console()
    signed(client, console_env, "inference")
    response = client.get("/console/audit")
    assert response.status_code == 403
    assert "inference may not audit.read (needs role: auditor)" in response.text
    denied = [e for e in events(console_env, "audit.read") if e.outcome == "denied"]
    assert denied[-1].actor == "inference"


def test_only_approvers_see_the_decision_forms(console: Any, console_env: Served) -> None:
    client = console()
    signed(client, console_env, "trainer")
    page = client.get("/console/models/bc?version=4")
    assert page.status_code == 200
    assert "Approve bc@4" not in page.text and "Reject bc@4" not in page.text
    client2 = console()
    signed(client2, console_env, "approver")
    page2 = client2.get("/console/models/bc?version=4")
    assert 'action="/console/models/bc/approve"' in page2.text
    assert 'action="/console/models/bc/reject"' in page2.text
    # The card's gate row ("roc_auc >= 0.5") is escaped once, not shown as "&gt;".
    card = page2.text.split('id="card"', 1)[1]
    assert "&gt;= 0.5" in card and "&amp;gt;" not in card


# -- approving ---------------------------------------------------------------------------------


def test_an_approver_approves_a_version_and_it_is_audited(
    console: Any, console_env: Served
) -> None:
    from aidlc.registry import approval, versions

    client = console()
    csrf = signed(client, console_env, "approver")
    response = client.post(
        "/console/models/bc/approve",
        data={"version": "4", "to": "staging", "reason": "looks good", "csrf": csrf},
    )
    assert response.headers["location"] == (
        "/console/models/bc?ok=Approved+bc%404%3B+aliases+now%3A+candidate%2C+staging."
    )
    shown = client.get(response.headers["location"])
    flash = '<div class="flash ok" role="status">Approved bc@4; aliases now: candidate, staging.'
    assert flash + "</div>" in shown.text
    with console_env.open("approver") as ws:
        assert versions.resolve(ws, "bc@4").status == "approved"
        assert approval.aliases(ws, "bc")["staging"] == 4
    approved = events(console_env, "model.approve")
    assert (approved[-1].actor, approved[-1].resource, approved[-1].details) == (
        "approver",
        "model:bc@4",
        {"to": "staging", "reason": "looks good"},
    )


def test_the_trainer_of_a_version_cannot_approve_it(console: Any, console_env: Served) -> None:
    from aidlc.registry import versions

    client = console()
    csrf = signed(client, console_env, "lead")
    page = client.get("/console/models/bc?version=4")
    assert "Approve bc@4" in page.text  # the role allows it; the rule refuses it
    response = client.post(
        "/console/models/bc/approve",
        data={"version": "4", "to": "staging", "reason": "my own", "csrf": csrf},
    )
    message = "lead trained bc@4 and cannot approve it (separation of duties)"
    assert flash_of(response)["error"] == [message]
    shown = client.get(response.headers["location"])
    assert f'<div class="flash error" role="alert">{message}</div>' in shown.text
    with console_env.open("approver") as ws:
        assert versions.resolve(ws, "bc@4").status == "registered"
    denied = [e for e in events(console_env, "model.approve") if e.outcome == "denied"]
    assert (denied[-1].actor, denied[-1].details) == ("lead", {"reason": message})


def test_an_in_sample_import_is_approved_only_when_the_approver_ticks_the_acceptance(
    console: Any, console_env: Served
) -> None:
    from sklearn.linear_model import LogisticRegression

    from aidlc.data.versions import read_version
    from aidlc.registry import importing, versions

    with console_env.open("trainer") as trainer:
        frame = read_version(trainer, "breast-cancer@1")
        features = ["mean_radius", "mean_texture", "worst_area"]
        model = LogisticRegression(max_iter=5000).fit(
            frame.select(features).to_pandas(), frame["diagnosis"].to_list()
        )
        version = importing.import_model(
            trainer, model, name="imported", trained_on="breast-cancer@1", target="diagnosis"
        )
    assert version.statement["evaluation"]["in_sample"]
    client = console()
    csrf = signed(client, console_env, "approver")
    page = client.get("/console/models/imported?version=1")
    assert "in-sample (optimistic)" in page.text and 'name="accept_in_sample"' in page.text
    refused = client.post(
        "/console/models/imported/approve",
        data={"version": "1", "to": "staging", "reason": "ok", "csrf": csrf},
    )
    assert "--accept-in-sample" in flash_of(refused)["error"][0]
    accepted = client.post(
        "/console/models/imported/approve",
        data={
            "version": "1",
            "to": "staging",
            "reason": "pilot",
            "accept_in_sample": "yes",
            "csrf": csrf,
        },
    )
    assert flash_of(accepted)["ok"] == ["Approved imported@1; aliases now: candidate, staging."]
    with console_env.open("approver") as ws:
        assert versions.resolve(ws, "imported@1").status == "approved"
    assert events(console_env, "model.approve")[-1].details["accepted_in_sample"] is True


def test_a_principal_without_the_role_gets_a_403_for_the_action(
    console: Any, console_env: Served
) -> None:
    client = console()
    csrf = signed(client, console_env, "trainer")
    response = client.post(
        "/console/models/bc/approve",
        data={"version": "4", "to": "staging", "reason": "x", "csrf": csrf},
    )
    assert response.status_code == 403
    assert "trainer may not model.approve (needs role: approver)" in response.text


# -- deployments -------------------------------------------------------------------------------


def test_an_approver_rolls_back_a_canary(console: Any, console_env: Served) -> None:
    from aidlc.registry import approval
    from aidlc.serve import rollout

    with console_env.open("approver") as ws:
        started = rollout.deploy(ws, "bc@2", canary=10, reason="try it")
    client = console()
    csrf = signed(client, console_env, "approver")
    page = client.get("/console/deployments")
    assert "<tr><td>bc@1</td><td>production</td><td>90 %</td></tr>" in page.text
    assert "<tr><td>bc@2</td><td>canary</td><td>10 %</td></tr>" in page.text
    assert "Roll back the canary of bc@2" in page.text
    assert "back in production" not in page.text  # bc@1 was the first production version
    response = client.post("/console/deployments/bc/stop", data={"reason": "wrong", "csrf": csrf})
    assert flash_of(response)["ok"] == ["Rolled back the canary of bc@2; bc@1 answers all traffic."]
    with console_env.open("approver") as ws:
        assert rollout.active(ws, "bc") is None
        ended = rollout.deployments(ws, "bc")[0]
        assert (ended.id, ended.status, ended.ended_by) == (started.id, "stopped", "approver")
        assert approval.aliases(ws, "bc")["production"] == 1
    stopped = events(console_env, "deploy.stop")
    assert (stopped[-1].actor, stopped[-1].details["reason"]) == ("approver", "wrong")
    after = client.get("/console/deployments")
    assert "<tr><td>bc@1</td><td>production</td><td>100 %</td></tr>" in after.text


def test_an_approver_puts_the_previous_production_version_back(
    console: Any, console_env: Served
) -> None:
    from aidlc.registry import approval

    with console_env.open("approver") as ws:
        approval.approve(ws, "bc@2", to="production", reason="better")
    client = console()
    csrf = signed(client, console_env, "approver")
    assert "Put bc@1 back in production" in client.get("/console/deployments").text
    response = client.post("/console/deployments/bc/rollback", data={"reason": "bad", "csrf": csrf})
    assert flash_of(response)["ok"] == ["bc@1 is production again."]
    with console_env.open("approver") as ws:
        assert approval.aliases(ws, "bc")["production"] == 1
    assert events(console_env, "deploy.rollback")[-1].details == {
        "from": 2,
        "to": 1,
        "reason": "bad",
    }


def test_inference_sees_deployments_without_buttons(console: Any, console_env: Served) -> None:
    from aidlc.serve import rollout

    with console_env.open("approver") as ws:
        rollout.deploy(ws, "bc@2", canary=10, reason="try it")
    client = console()
    csrf = signed(client, console_env, "inference")
    page = client.get("/console/deployments")
    assert "<tr><td>bc@2</td><td>canary</td><td>10 %</td></tr>" in page.text
    assert "/console/deployments/bc/stop" not in page.text
    refused = client.post("/console/deployments/bc/stop", data={"reason": "x", "csrf": csrf})
    assert refused.status_code == 403
    with console_env.open("approver") as ws:
        assert rollout.active(ws, "bc") is not None


# -- sessions ending ---------------------------------------------------------------------------


def test_the_session_ends_when_its_token_is_revoked(console: Any, console_env: Served) -> None:
    from aidlc.core import principals

    client = console()
    signed(client, console_env, "approver")
    assert client.get("/console/models").status_code == 200
    with console_env.open("admin") as admin:
        (token,) = [t for t in principals.list_tokens(admin, "approver") if t.revoked_at is None]
        principals.revoke_token(admin, token.id)
    response = client.get("/console/models")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Fmodels"
    ended = [e for e in events(console_env, "console.session") if e.actor == "approver"]
    assert ended[-1].details == {"reason": f"token {token.id} was revoked"}


def test_sign_out_ends_the_session(console: Any, console_env: Served) -> None:
    from aidlc.core.meta import ConsoleSessionRecord

    client = console()
    csrf = signed(client, console_env, "auditor")
    cookie = client.cookies.get("aidlc_console")
    assert client.post("/console/logout").status_code == 403  # no CSRF token: refused
    response = client.post("/console/logout", data={"csrf": csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"
    assert 'aidlc_console=""' in response.headers["set-cookie"]
    client.cookies.set("aidlc_console", cookie, path="/console")  # a stolen copy of the cookie
    assert client.get("/console").status_code == 303
    with console_env.open("admin") as ws, ws.db.reading() as session:
        rec = session.query(ConsoleSessionRecord).one()
        assert rec.ended_at is not None
    assert [e.actor for e in events(console_env, "console.signout")] == ["auditor"]


@pytest.mark.parametrize("field", ["last_seen_at", "expires_at"])
def test_idle_and_old_sessions_end(console: Any, console_env: Served, field: str) -> None:
    from aidlc.core.meta import ConsoleSessionRecord

    client = console()
    signed(client, console_env, "auditor")
    with console_env.open("admin") as ws, ws.db.transaction() as session:
        rec = session.query(ConsoleSessionRecord).one()
        ago = timedelta(minutes=31) if field == "last_seen_at" else timedelta(seconds=1)
        setattr(rec, field, datetime.now(UTC) - ago)
    assert client.get("/console").status_code == 303
    reasons = [e.details["reason"] for e in events(console_env, "console.session")]
    assert reasons == [
        "the session was idle for more than 30 minutes"
        if field == "last_seen_at"
        else "the session reached its 8-hour limit"
    ]


# -- output ------------------------------------------------------------------------------------


def test_every_console_response_carries_the_console_csp(console: Any, console_env: Served) -> None:
    client = console()
    assert client.get("/console/login").headers["content-security-policy"] == CONSOLE_CSP
    signed(client, console_env, "auditor")
    for path in PAGES + ["/console/static/console.css"]:
        response = client.get(path)
        assert response.headers["content-security-policy"] == CONSOLE_CSP, path
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
    assert client.get("/healthz").headers["content-security-policy"] == (
        "default-src 'none'; frame-ancestors 'none'"
    )
    css = client.get("/console/static/console.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert ":focus-visible" in css.text


def test_hostile_text_is_escaped(console: Any, console_env: Served) -> None:
    from aidlc.registry import versions

    hostile = '<script>alert("x")</script>'
    with console_env.open("lead") as ws:
        versions.set_tag(ws, "bc@4", "note", hostile)
    client = console()
    signed(client, console_env, "approver")
    page = client.get("/console/models/bc?version=4")
    assert "note=&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page.text
    assert "<script" not in page.text
    flash = client.get("/console/models", params={"error": hostile})
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in flash.text
    assert "<script" not in flash.text
    named = client.get("/console/models/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert named.status_code == 422
    assert "<img" not in named.text
    assert "&#x27;&lt;img src=x onerror=alert(1)&gt;&#x27;" in named.text


def test_an_unknown_console_address_is_a_404_page(console: Any, console_env: Served) -> None:
    client = console()
    signed(client, console_env, "auditor")
    response = client.get("/console/no-such-page")
    assert response.status_code == 404
    assert "There is no console page at this address." in response.text
    assert nav(response.text)[0] == "Overview"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"&".join(b"f%d=1" % i for i in range(60)), "the form has too many fields"),
        (b"reason=\xff\xfe", "the form is not UTF-8"),
        (b"reason=" + b"x" * 40_000, "the form is too large"),
    ],
)
def test_malformed_form_bodies_get_a_400_and_change_nothing(
    console: Any, console_env: Served, body: bytes, message: str
) -> None:
    from aidlc.registry import versions

    client = console()
    signed(client, console_env, "approver")
    headers = {"content-type": "application/x-www-form-urlencoded"}
    action = client.post("/console/models/bc/approve", content=body, headers=headers)
    assert (action.status_code, message in action.text) == (400, True)
    login = console().post("/console/login", content=body, headers=headers)
    assert (login.status_code, message in login.text) == (400, True)
    with console_env.open("approver") as ws:
        assert versions.resolve(ws, "bc@4").status == "registered"


HOSTILE = [
    "\u00b2",
    "\u0663",
    "",
    "x" * 5000,
    "<script>alert(1)</script>",
    "-1",
    "9" * 40,
    "bc@",
    "@@",
    "../..",
    "%00",
    "\u202e",
    "NaN",
    "bc@999",
    "dataset:nope@1",
    "prediction:zz",
]


@pytest.mark.parametrize(
    "path",
    [
        "/console/monitoring?model={}",
        "/console/audit?before={}",
        "/console/audit?outcome={}&actor={}",
        "/console/audit?q={}",
        "/console/compliance?framework={}",
        "/console/lineage?ref={}",
        "/console/models/{}",
        "/console/datasets/{}",
        "/console/models/bc?version={}",
    ],
)
def test_hostile_query_values_never_make_a_server_error(
    console: Any, console_env: Served, path: str
) -> None:
    from urllib.parse import quote

    client = console()
    signed(client, console_env, "auditor")
    for value in HOSTILE:
        response = client.get(path.format(*[quote(value, safe="")] * path.count("{}")))
        assert response.status_code in (200, 400, 403, 404, 422), (
            path,
            value,
            response.status_code,
        )
        if response.status_code != 200:  # a problem page that says what was wrong
            assert "Cannot show this page" in response.text or "Not" in response.text
        assert "<script>alert(1)</script>" not in response.text


@pytest.mark.parametrize("version", ["\u00b2", "\u0663", "9" * 40, "-1", ""])
def test_an_action_naming_a_strange_version_is_refused_cleanly(
    console: Any, console_env: Served, version: str
) -> None:
    client = console()
    csrf = signed(client, console_env, "approver")
    form = {"version": version, "to": "staging", "reason": "x", "csrf": csrf}
    response = client.post("/console/models/bc/approve", data=form)
    assert response.status_code == 303
    assert flash_of(response)["error"] == ["the form names no version"]
