"""The console in headless Chromium against a real `aidlc serve` process: sign in with the
keyboard, approve as an approver, be refused as the version's trainer, roll back a canary and
read the drift chart. Screenshots of each step go to test-artifacts/console/."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.monitor.helpers import serve_rows, shifted
from tests.serve.conftest import Served
from tests.serve.test_server_process import Running, serving

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
DRIFT = {"mean_radius": 1.4, "mean_perimeter": 1.4, "mean_area": 1.8}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


@pytest.fixture(scope="module")
def site(
    console_template: Served, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Running, Served]]:
    """`aidlc serve` over a copy of the console workspace with a drifted monitor report and a
    canary of bc@2 running."""
    from aidlc.demo import breast_cancer
    from aidlc.monitor import runner
    from aidlc.serve import rollout

    base = tmp_path_factory.mktemp("browser")
    env = Served(base / "ws", dict(console_template.tokens))
    shutil.copytree(console_template.root, env.root, symlinks=True)
    rows = breast_cancer.frame().drop(["patient_id", "diagnosis"]).to_dicts()
    serve_rows(env, shifted(rows[:300], DRIFT))
    with env.open("monitor") as ws:
        (outcome,) = runner.run(ws, model="bc", window="1h", retrain=False)
    assert outcome.report.verdict == "breach"
    with env.open("approver") as ws:
        rollout.deploy(ws, "bc@2", canary=10, reason="browser test")
    with serving(env.root, env.tokens["service"], logs=base) as running:
        yield running, env


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, url: str, token: str, path: str = "/console") -> None:
    """Open a console page, land on sign-in, reach the token field with Tab, type, Enter."""
    page.goto(url + path)
    assert page.url.startswith(url + "/console/login?next=")
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "token":
            break
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    page.wait_for_url(url + path)


def test_sign_in_with_the_keyboard_and_approve_as_the_approver(
    site: tuple[Running, Served], page: Any
) -> None:
    running, env = site
    sign_in(page, running.url, env.tokens["approver"], "/console/models/bc?version=4")
    shot(page, "01-signed-in-model-page")
    assert page.get_by_text("Signed in as").inner_text().startswith("Signed in as approver")
    page.get_by_label("Reason for approving").fill("reviewed in the browser")
    page.get_by_role("button", name="Approve bc@4").click()
    status = page.get_by_role("status")
    status.wait_for()
    assert status.inner_text() == "Approved bc@4; aliases now: candidate, staging."
    shot(page, "02-approved")


def test_the_trainer_is_refused_with_a_visible_message(
    site: tuple[Running, Served], page: Any
) -> None:
    running, env = site
    sign_in(page, running.url, env.tokens["lead"], "/console/models/bc?version=4")
    page.get_by_label("Reason for approving").fill("my own model")
    page.get_by_role("button", name="Approve bc@4").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text() == "lead trained bc@4 and cannot approve it (separation of duties)"
    assert alert.is_visible()
    shot(page, "03-trainer-refused")


def test_the_approver_rolls_back_the_canary(site: tuple[Running, Served], page: Any) -> None:
    running, env = site
    sign_in(page, running.url, env.tokens["approver"], "/console/deployments")
    split = page.get_by_role("table", name="Traffic split")
    assert "10 %" in split.inner_text()
    shot(page, "04-canary-running")
    page.get_by_label("Reason for rolling back").fill("seen enough")
    page.get_by_role("button", name="Roll back the canary of bc@2").click()
    status = page.get_by_role("status")
    status.wait_for()
    assert status.inner_text() == "Rolled back the canary of bc@2; bc@1 answers all traffic."
    assert re.search(r"bc@1\s+production\s+100 %", split.inner_text())
    shot(page, "05-canary-rolled-back")


def test_the_drift_chart_shows_the_drifted_features(
    site: tuple[Running, Served], page: Any
) -> None:
    running, env = site
    sign_in(page, running.url, env.tokens["auditor"], "/console/monitoring?model=bc")
    chart = page.get_by_role("img", name=re.compile("Drift"))
    assert chart.first.is_visible()
    label = chart.first.get_attribute("aria-label")
    assert label == "Drift score per feature over time for bc"
    box = chart.first.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    shot(page, "06-drift-chart")
