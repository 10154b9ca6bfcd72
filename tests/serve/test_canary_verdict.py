"""The canary verdict from its evidence: when it waits, when it rolls back (each limit, at and past
its edge), when it promotes, and how latency and failures are counted."""

from __future__ import annotations

import pytest

from aidlc.core.config import CanaryPolicy
from aidlc.serve.rollout import CanaryJudge

POLICY = CanaryPolicy(
    promote_after=10, min_requests=4, max_error_rate=0.25, max_latency_ratio=2.0, max_divergence=0.5
)


def _judge(requests: int, *, errors: int = 0, diverged: int = 0, candidate_ms: float = 5.0,
           production_ms: float = 5.0, policy: CanaryPolicy = POLICY) -> CanaryJudge:  # fmt: skip
    judge = CanaryJudge(policy)
    for i in range(requests):
        judge.observe(
            error=i < errors,
            candidate_ms=candidate_ms,
            production_ms=production_ms,
            compared=2,
            diverged=2 if i < diverged else 0,
        )
    return judge


def test_no_verdict_before_the_minimum_number_of_requests() -> None:
    assert _judge(3, errors=3, diverged=3, candidate_ms=100.0).verdict() is None
    verdict = _judge(4, errors=4).verdict()
    assert verdict is not None and verdict[0] == "rolled_back"


def test_a_clean_canary_is_promoted_after_promote_after_requests() -> None:
    assert _judge(9).verdict() is None
    outcome, evidence = _judge(10).verdict() or ("", {})
    assert outcome == "promoted" and evidence["breaches"] == []
    assert evidence == {
        "requests": 10, "error_rate": 0.0, "divergence": 0.0, "latency_ratio": 1.0, "breaches": []
    }  # fmt: skip


def test_an_error_rate_above_its_limit_rolls_back() -> None:
    assert _judge(8, errors=2).verdict() is None  # 0.25 is at the limit, not above it
    outcome, evidence = _judge(8, errors=3).verdict() or ("", {})
    assert outcome == "rolled_back" and evidence["error_rate"] == 3 / 8
    assert evidence["requests"] == 8
    assert evidence["breaches"] == ["error rate 0.375 > 0.25"]


def test_divergence_above_its_limit_rolls_back() -> None:
    """Divergence is the share of compared predictions that differed."""
    assert _judge(8, diverged=4).verdict() is None  # 8 of 16 compared: at the limit
    outcome, evidence = _judge(8, diverged=5).verdict() or ("", {})
    assert outcome == "rolled_back" and evidence["divergence"] == 10 / 16
    assert evidence["breaches"] == ["divergence 0.625 > 0.5"]


def test_a_slower_candidate_rolls_back_on_the_p95_latency_ratio() -> None:
    assert _judge(8, candidate_ms=10.0, production_ms=5.0).verdict() is None  # ratio 2: at limit
    outcome, evidence = _judge(8, candidate_ms=10.5, production_ms=5.0).verdict() or ("", {})
    assert outcome == "rolled_back" and evidence["latency_ratio"] == 2.1
    assert evidence["breaches"] == ["p95 latency ratio 2.10 > 2.0"]


def test_every_breach_is_listed_and_a_breach_wins_over_promotion() -> None:
    outcome, evidence = _judge(
        20, errors=10, diverged=20, candidate_ms=50.0, production_ms=5.0
    ).verdict() or ("", {})
    assert outcome == "rolled_back" and len(evidence["breaches"]) == 3
    assert [b.split()[0] for b in evidence["breaches"]] == ["error", "divergence", "p95"]


def test_latencies_under_a_millisecond_count_as_one() -> None:
    """Timer noise below 1 ms must not decide: 0.1 ms against 0.01 ms is a ratio of 1."""
    judge = _judge(10, candidate_ms=0.1, production_ms=0.01)
    assert judge.evidence()["latency_ratio"] == 1.0
    assert _judge(4, candidate_ms=3.0, production_ms=0.5).evidence()["latency_ratio"] == 3.0
    assert _judge(4, candidate_ms=0.5, production_ms=2.0).evidence()["latency_ratio"] == 0.5


def test_failed_requests_do_not_count_toward_the_candidate_latency() -> None:
    judge = CanaryJudge(POLICY)
    judge.observe(error=True, candidate_ms=1000.0, production_ms=5.0, compared=0, diverged=0)
    judge.observe(error=False, candidate_ms=5.0, production_ms=5.0, compared=0, diverged=0)
    assert judge.candidate_ms == [5.0] and judge.production_ms == [5.0, 5.0]
    assert judge.evidence() == {
        "requests": 2, "error_rate": 0.5, "divergence": 0.0, "latency_ratio": 1.0
    }  # fmt: skip


def test_empty_evidence_is_all_zero() -> None:
    assert CanaryJudge(POLICY).evidence() == {
        "requests": 0, "error_rate": 0.0, "divergence": 0.0, "latency_ratio": 0.0
    }  # fmt: skip
    only_errors = _judge(4, errors=4, candidate_ms=50.0)
    assert only_errors.evidence()["latency_ratio"] == 0.0  # no successful candidate request


def test_the_latency_ratio_uses_the_95th_percentile() -> None:
    """Of 20 candidate latencies, one slow outlier (under 5%) does not move p95; two do."""
    judge = CanaryJudge(POLICY)
    for i in range(20):
        judge.observe(
            error=False, candidate_ms=100.0 if i == 0 else 10.0, production_ms=10.0,
            compared=0, diverged=0,
        )  # fmt: skip
    assert judge.evidence()["latency_ratio"] == 10.0  # sorted()[19]: the outlier is the p95
    ordered = CanaryJudge(POLICY)
    for i in range(40):
        ordered.observe(error=False, candidate_ms=float(40 - i), production_ms=39.0,
                        compared=0, diverged=0)  # fmt: skip
    # p95 of 1..40 is the 39th value (index int(0.95 * 40) = 38), not the largest
    assert ordered.evidence()["latency_ratio"] == 1.0
    one = _judge(1, candidate_ms=7.0, production_ms=3.5)
    assert one.evidence()["latency_ratio"] == 2.0


@pytest.mark.parametrize("cap", [3])
def test_only_the_most_recent_latencies_are_kept(monkeypatch: pytest.MonkeyPatch, cap: int) -> None:
    monkeypatch.setattr(CanaryJudge, "_KEEP", cap)
    judge = CanaryJudge(POLICY)
    for ms in (100.0, 1.0, 2.0, 3.0, 4.0):
        judge.observe(error=False, candidate_ms=ms, production_ms=ms, compared=0, diverged=0)
    assert judge.candidate_ms == [2.0, 3.0, 4.0] and judge.production_ms == [2.0, 3.0, 4.0]
    assert judge.requests == 5
