"""Alert sinks: the log, a Slack-style webhook, SMTP email and an SNS topic.

`deliver` sends one alert to every sink that takes its severity. A sink that fails is logged and
reported, never raised: one broken sink must not silence the others or fail the caller. Logs and
results never carry a password or a webhook URL's path (which often embeds a secret token).
"""

from __future__ import annotations

import json
import logging
import os
import re
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from aidlc import __version__
from aidlc.core.alerts import SEVERITY_RANK, Alert
from aidlc.core.config import AlertsConfig, AlertSink
from aidlc.errors import ConfigError

log = logging.getLogger("aidlc.alerts")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SLACK_COLOURS = {"INFO": "#439fe0", "WARNING": "#daa038", "CRITICAL": "#d00000"}
_LOG_LEVELS = {"INFO": logging.INFO, "WARNING": logging.WARNING, "CRITICAL": logging.CRITICAL}


@dataclass(frozen=True)
class Delivery:
    """What one sink did with one alert: `sink` names it without secrets."""

    sink: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def deliver(config: AlertsConfig, alert: Alert) -> list[Delivery]:
    """Send `alert` to every sink whose `min_severity` it reaches; never raises.

    >>> from datetime import UTC, datetime
    >>> alert = Alert(1, "INFO", "demo", "hello", {}, datetime(2025, 1, 1, tzinfo=UTC), "ann")
    >>> deliver(AlertsConfig(), alert)
    [Delivery(sink='log', ok=True, detail='logged')]
    """
    results = []
    for sink in config.sinks:
        if SEVERITY_RANK[sink.min_severity] > SEVERITY_RANK[alert.severity]:
            continue
        name = sink_name(sink)
        try:
            detail = _SENDERS[sink.type](sink, alert)
        except Exception as exc:  # any failure of one sink is reported, and the others still run
            message = _scrub(f"{type(exc).__name__}: {exc}", sink)
            log.warning("alert %d not delivered to %s: %s", alert.id, name, message)
            results.append(Delivery(name, False, message))
        else:
            results.append(Delivery(name, True, detail))
    return results


def sink_name(sink: AlertSink) -> str:
    """The sink's type and target, safe to show: a webhook only as scheme://host[:port]."""
    if sink.type == "webhook" and sink.url:
        return f"webhook {_origin(sink.url)}"
    if sink.type == "smtp":
        return f"smtp {sink.host}:{sink.port}"
    if sink.type == "sns":
        return f"sns {sink.topic_arn}"
    return sink.type


def _origin(url: str) -> str:
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"


def _scrub(text: str, sink: AlertSink) -> str:
    """`text` without the sink's secrets, on one line and short."""
    hidden: list[str] = []
    if sink.url:
        parts = urlsplit(sink.url)
        hidden += [sink.url, parts.path, parts.query, parts.username or "", parts.password or ""]
    if sink.password_env and (password := os.environ.get(sink.password_env)):
        hidden.append(password)
    for secret in sorted((s for s in hidden if len(s) > 1), key=len, reverse=True):
        text = text.replace(secret, "***")
    return _CONTROL.sub(" ", text)[:300]


def _one_line(text: str, limit: int) -> str:
    return _CONTROL.sub(" ", text).strip()[:limit]


def _details_text(alert: Alert) -> str:
    lines = [
        f"{key}: {value if isinstance(value, str) else json.dumps(value, default=str)}"
        for key, value in sorted(alert.details.items())
    ]
    return "\n".join(lines)


def _log_line(alert: Alert) -> str:
    return json.dumps(
        {
            "alert": alert.id,
            "severity": alert.severity,
            "source": alert.source,
            "title": alert.title,
        },
        sort_keys=True,
    )


# -- sinks ------------------------------------------------------------------------------------


def _send_log(sink: AlertSink, alert: Alert) -> str:
    log.log(_LOG_LEVELS[alert.severity], _log_line(alert))
    return "logged"


def _slack_escape(text: str) -> str:
    # Slack reads <...> as links and mentions (<!channel>); titles can come from file names.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert) -> dict[str, Any]:
    """The Slack-compatible message for `alert`: a `text` fallback and Block Kit blocks."""
    headline = f"[{alert.severity}] {alert.source}: {_one_line(alert.title, 300)}"
    fields = [
        ("Severity", alert.severity),
        ("Source", alert.source),
        ("Time", f"{alert.created_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("Alert", f"#{alert.id} by {alert.created_by}"),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline[:150]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{label}*\n{_slack_escape(value)}"}
                for label, value in fields
            ],
        },
    ]
    details = _details_text(alert)
    if details:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"```{_slack_escape(details)[:2900]}```"},
            }
        )
    return {
        "text": _slack_escape(headline),
        "blocks": blocks,
        "attachments": [{"color": _SLACK_COLOURS[alert.severity], "fallback": headline}],
    }


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirected POST would arrive as a GET without the alert, yet answer 2xx.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _send_webhook(sink: AlertSink, alert: Alert) -> str:
    url = sink.url or ""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError("a webhook url must be http(s)")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=json.dumps(slack_payload(alert)).encode(),
        headers={"Content-Type": "application/json", "User-Agent": f"aidlc/{__version__}"},
        method="POST",
    )
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        # Only http(s) URLs get here: checked above and by the config.
        with opener.open(request, timeout=sink.timeout_seconds) as response:  # nosec B310: http(s)
            status = int(response.status)
    except urllib.error.HTTPError as error:  # 3xx (redirects are not followed), 4xx, 5xx
        error.close()
        status = error.code
    if not 200 <= status < 300:
        raise ConnectionError(f"the webhook answered HTTP {status}")
    return f"HTTP {status}"


def _smtp_password(sink: AlertSink) -> str | None:
    if not sink.username:
        return None
    if not sink.password_env:
        raise ConfigError("the smtp sink has a username but no password_env naming its password")
    password = os.environ.get(sink.password_env)
    if not password:
        raise ConfigError(
            f"the SMTP password variable {sink.password_env} is not set in the environment"
        )
    if not sink.starttls:
        raise ConfigError("refusing to send the SMTP password unencrypted: set starttls: true")
    return password


def email_message(sink: AlertSink, alert: Alert) -> EmailMessage:
    """The email for `alert`: subject `[aidlc SEVERITY] title`, a plain-text body."""
    message = EmailMessage()
    message["Subject"] = f"[aidlc {alert.severity}] {_one_line(alert.title, 200)}"
    message["From"] = sink.sender or ""
    message["To"] = ", ".join(sink.recipients)
    details = _details_text(alert)
    message.set_content(
        f"{alert.title}\n\n"
        f"Severity: {alert.severity}\n"
        f"Source:   {alert.source}\n"
        f"Time:     {alert.created_at:%Y-%m-%d %H:%M:%S} UTC\n"
        f"Alert:    #{alert.id}, raised by {alert.created_by}\n"
        + (f"\nDetails:\n{details}\n" if details else "")
    )
    return message


def _send_smtp(sink: AlertSink, alert: Alert) -> str:
    password = _smtp_password(sink)
    message = email_message(sink, alert)
    with smtplib.SMTP(sink.host or "", sink.port, timeout=sink.timeout_seconds) as smtp:
        if sink.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if sink.username and password:
            smtp.login(sink.username, password)
        refused = smtp.send_message(message)
    if refused:
        raise ConnectionError(f"the server refused {len(refused)} of the recipients")
    return f"sent to {len(sink.recipients)} recipient(s)"


def sns_subject(alert: Alert) -> str:
    """An SNS subject: ASCII, one line, under 100 characters.

    >>> from datetime import UTC, datetime
    >>> sns_subject(Alert(1, "INFO", "x", "caf\\u00e9\\nok", {}, datetime.now(UTC), "a"))
    '[aidlc INFO] caf? ok'
    """
    text = _one_line(f"[aidlc {alert.severity}] {alert.title}", 400)
    return text.encode("ascii", "replace").decode("ascii")[:99]


def _send_sns(sink: AlertSink, alert: Alert) -> str:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ConfigError("the sns sink needs boto3: install aidlc[aws]") from None
    arn = sink.topic_arn or ""
    # The region defaults to the topic's own (arn:aws:sns:REGION:account:name).
    region = sink.region or (arn.split(":")[3] if arn.count(":") >= 5 else None)
    timeout = sink.timeout_seconds
    client: Any = boto3.client(
        "sns",
        region_name=region,
        endpoint_url=sink.endpoint_url,
        config=Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"mode": "standard", "total_max_attempts": 2},
        ),
    )
    response = client.publish(
        TopicArn=arn,
        Subject=sns_subject(alert),
        Message=json.dumps(alert.to_json(), sort_keys=True, default=str),
    )
    return f"message {response['MessageId']}"


_SENDERS: dict[str, Callable[[AlertSink, Alert], str]] = {
    "log": _send_log,
    "webhook": _send_webhook,
    "smtp": _send_smtp,
    "sns": _send_sns,
}
