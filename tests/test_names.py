"""Names and ids that reach storage, logs and audit events are checked whole: a trailing newline
(which `re.match` with `$` lets through) is refused like any other character out of place."""

from __future__ import annotations

import pytest

from aidlc.core import objects
from aidlc.core.auth import check_name
from aidlc.data.versions import check_dataset_name
from aidlc.errors import InvalidInput
from aidlc.registry.versions import check_model_name

CHECKS = [
    pytest.param(check_name, "alice", id="principal"),
    pytest.param(check_dataset_name, "claims", id="dataset"),
    pytest.param(check_model_name, "churn", id="model"),
    pytest.param(
        lambda object_id: objects._check("raw", object_id), "claims/2026.csv", id="object"
    ),
]


@pytest.mark.parametrize(("check", "good"), CHECKS)
@pytest.mark.parametrize("tail", ["\n", "\r\n", "\n\n"])
def test_a_name_with_a_trailing_newline_is_refused(check, good, tail):
    check(good)  # the name itself is fine
    with pytest.raises(InvalidInput):
        check(good + tail)


def test_the_server_replaces_a_request_id_with_a_trailing_newline():
    from aidlc.serve import app

    assert app._REQUEST_ID.match("req-1")
    assert app._REQUEST_ID.match("req-1\n") is None  # would split a log line
    assert app._PREDICTION_ID.match("0" * 32 + "\n") is None
