"""Alert delivery against real servers: a webhook receiver, an SMTP server, SNS->SQS on moto;
deduplication within the cooldown, delivery only after commit, and `aidlc alerts` on the CLI
(in process with CliRunner for listing; as real processes where exit codes come from `main`)."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import update

from aidlc.core.alerts import Alert, list_alerts, raise_alert, send_test_alert
from aidlc.core.alertsinks import Delivery, deliver
from aidlc.core.config import AlertsConfig, AlertSink
from aidlc.core.meta import AlertRecord
from aidlc.errors import InvalidInput, PermissionDenied
from tests.cli.test_cli import run

SECRET_PATH = "/services/T0001/B0002/s3cr3tT0ken"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Receiver:
    """A webhook endpoint: answers 200 on any path but /fail... (500) and /moved (302)."""

    base: str
    posts: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.base + SECRET_PATH

    @property
    def failing_url(self) -> str:
        return self.base + "/fail" + SECRET_PATH


@pytest.fixture
def hook() -> Iterator[Receiver]:
    posts: list[tuple[str, str, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append((self.path, self.headers["Content-Type"], json.loads(body)))
            status = 500 if self.path.startswith("/fail") else 200
            if self.path.startswith("/moved"):
                status = 302
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_GET(self) -> None:
            posts.append((self.path, "GET", {}))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}", posts)
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    port: int
    envelopes: list[Any]


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    envelopes: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            envelopes.append(envelope)
            return "250 OK"

    port = _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Mailbox(port, envelopes)
    finally:
        controller.stop()


def _alert(severity: str = "WARNING", **kwargs: Any) -> Alert:
    values: dict[str, Any] = {
        "id": 7,
        "severity": severity,
        "source": "monitor",
        "title": "drift on churn <!channel>",
        "details": {"psi": 0.31, "feature": "age"},
        "created_at": datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC),
        "created_by": "watcher",
        **kwargs,
    }
    return Alert(**values)


def _sinks(*sinks: dict[str, Any], cooldown: str = "1h") -> dict[str, Any]:
    return {"alerts": {"cooldown": cooldown, "sinks": list(sinks)}}


def _raise(ws: Any, **kwargs: Any) -> int:
    values = {"severity": "WARNING", "source": "monitor", "title": "drift on churn", **kwargs}
    with ws.transaction() as session:
        return raise_alert(ws, session, **values)


# -- sinks --------------------------------------------------------------------------------------


def test_webhook_receives_slack_json_with_escaped_text(hook):
    config = AlertsConfig(sinks=(AlertSink(type="webhook", url=hook.url),))
    result = deliver(config, _alert())
    assert result == [Delivery(f"webhook {hook.base}", True, "HTTP 200")]
    [(path, content_type, body)] = hook.posts
    assert (path, content_type) == (SECRET_PATH, "application/json")
    assert body["text"] == "[WARNING] monitor: drift on churn &lt;!channel&gt;"
    header, facts, details = body["blocks"]
    assert header["text"] == {
        "type": "plain_text",
        "text": "[WARNING] monitor: drift on churn <!channel>",
    }
    assert [f["text"] for f in facts["fields"]] == [
        "*Severity*\nWARNING",
        "*Source*\nmonitor",
        "*Time*\n2025-03-04 05:06:07 UTC",
        "*Alert*\n#7 by watcher",
    ]
    assert details["text"]["text"] == "```feature: age\npsi: 0.31```"
    assert body["attachments"][0]["color"] == "#daa038"


def test_sinks_below_their_min_severity_are_skipped(hook):
    config = AlertsConfig(
        sinks=(
            AlertSink(type="webhook", url=hook.url, min_severity="CRITICAL"),
            AlertSink(type="log", min_severity="WARNING"),
        )
    )
    assert deliver(config, _alert("INFO")) == []
    assert deliver(config, _alert("WARNING")) == [Delivery("log", True, "logged")]
    assert [d.sink for d in deliver(config, _alert("CRITICAL"))] == [f"webhook {hook.base}", "log"]
    assert len(hook.posts) == 1


def test_failing_sinks_are_reported_and_logged_without_the_webhook_path(hook, caplog):
    dead = f"http://127.0.0.1:{_free_port()}{SECRET_PATH}"
    config = AlertsConfig(
        sinks=(
            AlertSink(type="webhook", url=hook.failing_url),
            AlertSink(type="webhook", url=dead, timeout_seconds=2),
            AlertSink(type="webhook", url=hook.base + "/moved" + SECRET_PATH),
            AlertSink(type="log"),
            AlertSink(type="webhook", url=hook.url),
        )
    )
    with caplog.at_level(logging.INFO, logger="aidlc.alerts"):
        result = deliver(config, _alert())
    assert [(d.ok, d.detail) for d in result] == [
        (False, "ConnectionError: the webhook answered HTTP 500"),
        (False, result[1].detail),
        (False, "ConnectionError: the webhook answered HTTP 302"),
        (True, "logged"),
        (True, "HTTP 200"),
    ]
    assert result[1].detail.startswith("URLError: ") and "refused" in result[1].detail
    # The redirect was not followed: the receiver saw three POSTs and no GET.
    assert [p[1] for p in hook.posts] == ["application/json"] * 3
    failures = [r.getMessage() for r in caplog.records if "not delivered" in r.getMessage()]
    assert failures[0] == (
        f"alert 7 not delivered to webhook {hook.base}: "
        "ConnectionError: the webhook answered HTTP 500"
    )
    assert len(failures) == 3
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "s3cr3tT0ken" not in logged and "/services/" not in logged
    assert "s3cr3tT0ken" not in json.dumps([d.to_json() for d in result])


def test_smtp_sends_an_email_with_subject_recipients_and_details(smtp_server):
    sink = AlertSink(
        type="smtp",
        host="127.0.0.1",
        port=smtp_server.port,
        starttls=False,
        sender="aidlc@example.org",
        recipients=("ops@example.org", "ml@example.org"),
    )
    result = deliver(AlertsConfig(sinks=(sink,)), _alert("CRITICAL"))
    assert result == [
        Delivery(f"smtp 127.0.0.1:{smtp_server.port}", True, "sent to 2 recipient(s)")
    ]
    [envelope] = smtp_server.envelopes
    assert envelope.mail_from == "aidlc@example.org"
    assert envelope.rcpt_tos == ["ops@example.org", "ml@example.org"]
    from email import message_from_bytes, policy

    message = message_from_bytes(envelope.original_content, policy=policy.default)
    assert message["Subject"] == "[aidlc CRITICAL] drift on churn <!channel>"
    assert message["To"] == "ops@example.org, ml@example.org"
    assert message.get_content().replace("\r\n", "\n") == (
        "drift on churn <!channel>\n\n"
        "Severity: CRITICAL\n"
        "Source:   monitor\n"
        "Time:     2025-03-04 05:06:07 UTC\n"
        "Alert:    #7, raised by watcher\n\n"
        "Details:\nfeature: age\npsi: 0.31\n"
    )


def test_smtp_without_its_password_variable_fails_without_connecting(smtp_server, monkeypatch):
    monkeypatch.delenv("AIDLC_TEST_SMTP_PASSWORD", raising=False)
    sink = AlertSink(
        type="smtp",
        host="127.0.0.1",
        port=smtp_server.port,
        sender="aidlc@example.org",
        recipients=("ops@example.org",),
        username="aidlc",
        password_env="AIDLC_TEST_SMTP_PASSWORD",
    )
    [result] = deliver(AlertsConfig(sinks=(sink,)), _alert())
    assert (result.ok, result.detail) == (
        False,
        "ConfigError: the SMTP password variable AIDLC_TEST_SMTP_PASSWORD is not set in the "
        "environment",
    )
    monkeypatch.setenv("AIDLC_TEST_SMTP_PASSWORD", "hunter2-password")
    plain = sink.model_copy(update={"starttls": False})
    [refused] = deliver(AlertsConfig(sinks=(plain,)), _alert())
    assert (refused.ok, refused.detail) == (
        False,
        "ConfigError: refusing to send the SMTP password unencrypted: set starttls: true",
    )
    # With STARTTLS asked for, a server that does not offer it fails the delivery.
    [no_tls] = deliver(AlertsConfig(sinks=(sink,)), _alert())
    assert no_tls.ok is False and no_tls.detail.startswith("SMTPNotSupportedError")
    assert "hunter2" not in no_tls.detail
    assert smtp_server.envelopes == []


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Dummy credentials for boto3's normal chain, which is what the SNS sink uses."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


def test_sns_publishes_the_alert_to_a_topic_read_back_through_sqs(
    make_env, aws_client, moto_endpoint, aws_env
):
    sns, sqs = aws_client("sns"), aws_client("sqs")
    topic = sns.create_topic(Name="aidlc-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="aidlc-alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    env = make_env(**_sinks({"type": "sns", "topic_arn": topic, "endpoint_url": moto_endpoint}))
    with env.open("monitor") as ws:
        alert_id = _raise(
            ws, severity="CRITICAL", title="prédiction drift " + "x" * 120, details={"psi": 0.4}
        )
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
    assert len(messages) == 1
    envelope = json.loads(messages[0]["Body"])
    assert envelope["TopicArn"] == topic
    assert envelope["Subject"] == ("[aidlc CRITICAL] pr?diction drift " + "x" * 120)[:99]
    body = json.loads(envelope["Message"])
    assert (body["id"], body["severity"], body["source"]) == (alert_id, "CRITICAL", "monitor")
    assert (body["details"], body["created_by"], body["occurrences"]) == (
        {"psi": 0.4},
        "monitor",
        1,
    )


def test_sns_failure_is_a_failed_delivery(aws_env, moto_endpoint):
    sink = AlertSink(
        type="sns",
        topic_arn="arn:aws:sns:us-east-1:123456789012:no-such-topic",
        endpoint_url=moto_endpoint,
    )
    [result] = deliver(AlertsConfig(sinks=(sink,)), _alert())
    assert result.sink == "sns arn:aws:sns:us-east-1:123456789012:no-such-topic"
    assert result.ok is False and result.detail.startswith("NotFoundException: ")


# -- raise_alert: deduplication and delivery after commit ---------------------------------------


def test_repeats_within_the_cooldown_are_counted_audited_and_sent_once(
    make_env, hook, metadata_backend
):
    env = make_env(metadata_backend, **_sinks({"type": "webhook", "url": hook.url}))
    with env.open("monitor") as ws:
        first = _raise(ws, dedup_key="drift:churn")
        second = _raise(ws, dedup_key="drift:churn", title="drift on churn again")
        assert first == second
        [alert] = list_alerts(ws)
        events = ws.audit.events(action="alert.*")
    assert (alert.id, alert.occurrences, alert.title) == (first, 2, "drift on churn")
    assert alert.last_at is not None and alert.last_at >= alert.created_at
    assert alert.to_json()["last_at"] == alert.last_at.isoformat()
    assert [(e.action, e.resource, e.actor) for e in events] == [
        ("alert.raise", f"alert:{first}", "monitor"),
        ("alert.repeat", f"alert:{first}", "monitor"),
    ]
    assert events[1].details["occurrences"] == 2
    assert len(hook.posts) == 1


def test_after_the_cooldown_a_repeat_is_a_new_alert_and_sent_again(
    make_env, hook, metadata_backend
):
    env = make_env(metadata_backend, **_sinks({"type": "webhook", "url": hook.url}, cooldown="10m"))
    with env.open("monitor") as ws:
        first = _raise(ws, dedup_key="drift:churn")
        with ws.db.transaction() as session:
            session.execute(
                update(AlertRecord).values(created_at=datetime.now(UTC) - timedelta(minutes=11))
            )
        second = _raise(ws, dedup_key="drift:churn")
        alerts = list_alerts(ws)
    assert second == first + 1
    assert [(a.id, a.occurrences) for a in alerts] == [(second, 1), (first, 1)]
    assert len(hook.posts) == 2


def test_an_escalated_repeat_is_a_new_alert(make_env, hook):
    env = make_env(**_sinks({"type": "webhook", "url": hook.url}))
    with env.open("monitor") as ws:
        warning = _raise(ws, dedup_key="k", severity="WARNING")
        critical = _raise(ws, dedup_key="k", severity="CRITICAL")
        again = _raise(ws, dedup_key="k", severity="WARNING")
        alerts = list_alerts(ws)
    assert critical != warning and again == critical
    assert [(a.severity, a.occurrences) for a in alerts] == [("CRITICAL", 2), ("WARNING", 1)]
    assert [p[2]["blocks"][1]["fields"][0]["text"] for p in hook.posts] == [
        "*Severity*\nWARNING",
        "*Severity*\nCRITICAL",
    ]


def test_alerts_are_sent_only_after_commit_and_never_when_rolled_back(
    make_env, hook, metadata_backend
):
    env = make_env(metadata_backend, **_sinks({"type": "webhook", "url": hook.url}))
    with env.open("monitor") as ws:
        with pytest.raises(RuntimeError), ws.transaction() as session:
            raise_alert(ws, session, severity="CRITICAL", source="monitor", title="rolled back")
            raise RuntimeError("the caller failed")
        with ws.transaction() as session:
            with pytest.raises(RuntimeError), session.begin_nested():
                raise_alert(ws, session, severity="CRITICAL", source="monitor", title="savepoint")
                raise RuntimeError("the savepoint failed")
            kept = raise_alert(ws, session, severity="INFO", source="monitor", title="kept")
            assert hook.posts == []  # not before the commit
        alerts = list_alerts(ws)
    assert [(a.id, a.title) for a in alerts] == [(kept, "kept")]
    assert [p[2]["text"] for p in hook.posts] == ["[INFO] monitor: kept"]


def test_a_broken_sink_does_not_fail_the_caller_or_the_other_sinks(make_env, hook, caplog):
    env = make_env(
        **_sinks(
            {"type": "webhook", "url": hook.failing_url},
            {"type": "log"},
            {"type": "webhook", "url": hook.url},
        )
    )
    with env.open("monitor") as ws, caplog.at_level(logging.INFO, logger="aidlc.alerts"):
        alert_id = _raise(ws, severity="CRITICAL")
    assert [p[0] for p in hook.posts] == ["/fail" + SECRET_PATH, SECRET_PATH]
    lines = [r.getMessage() for r in caplog.records if r.name == "aidlc.alerts"]
    assert lines == [
        f"alert {alert_id} not delivered to webhook {hook.base}: "
        "ConnectionError: the webhook answered HTTP 500",
        json.dumps(
            {
                "alert": alert_id,
                "severity": "CRITICAL",
                "source": "monitor",
                "title": "drift on churn",
            },
            sort_keys=True,
        ),
    ]


def test_list_alerts_filters_by_severity_source_and_time(make_env, metadata_backend):
    env = make_env(metadata_backend, **_sinks())
    with env.open("monitor") as ws:
        old = _raise(ws, severity="CRITICAL", source="registry", title="old")
        with ws.db.transaction() as session:
            session.execute(
                update(AlertRecord).values(created_at=datetime.now(UTC) - timedelta(days=2))
            )
        info = _raise(ws, severity="INFO", title="info")
        crit = _raise(ws, severity="CRITICAL", title="crit")
        since = datetime.now(UTC) - timedelta(days=1)
        assert [a.id for a in list_alerts(ws, severity="CRITICAL")] == [crit, old]
        assert [a.id for a in list_alerts(ws, source="registry")] == [old]
        assert [a.id for a in list_alerts(ws, since=since)] == [crit, info]
        assert [a.id for a in list_alerts(ws, limit=1)] == [crit]
        with pytest.raises(InvalidInput, match="unknown severity 'LOUD'"):
            list_alerts(ws, severity="LOUD")
        with pytest.raises(InvalidInput, match="timezone-aware"):
            list_alerts(ws, since=datetime(2025, 1, 1))


def test_test_alert_needs_the_monitor_role_and_reports_each_sink(make_env, hook):
    env = make_env(**_sinks({"type": "webhook", "url": hook.url}, {"type": "log"}))
    with env.open("auditor") as ws, pytest.raises(PermissionDenied, match=r"may not alert\.send"):
        send_test_alert(ws)
    with env.open("monitor") as ws:
        alert, deliveries = send_test_alert(ws, severity="WARNING")
        again, _ = send_test_alert(ws, severity="WARNING")
    assert (alert.source, alert.title, alert.severity) == (
        "aidlc",
        "test alert sent by monitor",
        "WARNING",
    )
    assert again.id == alert.id + 1  # a test alert is never swallowed by the cooldown
    assert deliveries == [
        Delivery(f"webhook {hook.base}", True, "HTTP 200"),
        Delivery("log", True, "logged"),
    ]


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_lists_with_filters_and_rejects_bad_values(make_env):
    env = make_env(**_sinks())
    root, token = env.root, env.tokens["monitor"]
    with env.open("monitor") as ws:
        old = _raise(ws, severity="CRITICAL", source="registry", title="old")
        with ws.db.transaction() as session:
            session.execute(
                update(AlertRecord).values(created_at=datetime.now(UTC) - timedelta(days=2))
            )
        new = _raise(ws, severity="WARNING", title="new")
        _raise(ws, severity="WARNING", title="new")

    from typer.testing import CliRunner

    from aidlc.cli import app

    def invoke(*args: str) -> Any:
        env = {"AIDLC_TOKEN": token, "AIDLC_WORKSPACE": str(root)}
        return CliRunner().invoke(app, ["alerts", "list", *args], env=env)

    def ids(*args: str) -> list[int]:
        result = invoke(*args, "--json")
        assert result.exit_code == 0, result.output
        return [a["id"] for a in json.loads(result.stdout)]

    assert ids() == [new, old]
    assert ids("--severity", "critical") == [old]
    assert ids("--source", "registry") == [old]
    assert ids("--since", "24h") == [new]
    assert ids("--limit", "1") == [new]
    listed = json.loads(invoke("--json").stdout)
    assert listed[0]["occurrences"] == 2 and listed[0]["last_at"] is not None
    table = invoke()
    assert table.exit_code == 0 and "times" in table.stdout and "new" in table.stdout
    bad_since = invoke("--since", "yesterday")
    assert bad_since.exit_code == 2
    assert "'yesterday' is not a duration such as '30m', '24h' or '7d'" in bad_since.stderr
    bad_severity = invoke("--severity", "LOUD")
    assert bad_severity.exit_code == 2
    assert "'LOUD' is not one of INFO, WARNING, CRITICAL" in bad_severity.stderr


def test_cli_test_alert_exit_codes(make_env, hook):
    env = make_env(
        **_sinks(
            {"type": "webhook", "url": hook.url},
            {"type": "webhook", "url": hook.failing_url, "min_severity": "CRITICAL"},
        )
    )
    root, token = env.root, env.tokens["monitor"]
    ok = run("alerts", "test", "--json", token=token, workspace=root)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["deliveries"] == [
        {"sink": f"webhook {hook.base}", "ok": True, "detail": "HTTP 200"}
    ]
    failed = run("alerts", "test", "--severity", "CRITICAL", token=token, workspace=root)
    assert failed.returncode == 1
    assert "sent" in failed.stdout and "failed" in failed.stdout and "HTTP 500" in failed.stdout
    assert "s3cr3tT0ken" not in failed.stdout + failed.stderr
    denied = run("alerts", "test", token=env.tokens["auditor"], workspace=root)
    assert denied.returncode == 4 and "may not alert.send" in denied.stderr
    assert [p[2]["text"] for p in hook.posts] == [
        "[INFO] aidlc: test alert sent by monitor",
        "[CRITICAL] aidlc: test alert sent by monitor",
        "[CRITICAL] aidlc: test alert sent by monitor",
    ]


def test_cli_test_alert_fails_when_no_sink_takes_the_severity(make_env):
    env = make_env(**_sinks({"type": "log", "min_severity": "CRITICAL"}))
    proc = run("alerts", "test", token=env.tokens["monitor"], workspace=env.root)
    assert proc.returncode == 1 and "no sink takes INFO alerts" in proc.stderr
