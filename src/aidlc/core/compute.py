"""The compute backend: in process by default, a Ray cluster when asked for.

`ray_session` is the one place that starts or joins Ray, for the data engine and for tuning.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from aidlc.errors import ConfigError


@contextmanager
def ray_session(address: str | None = None) -> Iterator[None]:
    """Connect to Ray for the duration of the block: the cluster already initialised in this
    process (left running), else the one at `address` or `$RAY_ADDRESS`, else a local one with
    one CPU per core; a cluster this opened is shut down (or disconnected from) after."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the ray engine needs Ray installed", hint="pip install 'aidlc[ray]'"
        ) from None
    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        if address:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        else:
            ray.init(
                num_cpus=os.cpu_count() or 1,
                include_dashboard=False,
                ignore_reinit_error=True,
                log_to_driver=False,
            )
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        where = f"reach the Ray cluster at {address[:200]}" if address else "start a local Ray"
        raise ConfigError(
            f"cannot {where} ({type(exc).__name__})",
            hint="check --ray-address or RAY_ADDRESS and the cluster's authentication token",
        ) from None
    try:
        yield
    finally:
        ray.shutdown()  # stops a local cluster we started; only disconnects from a remote one
