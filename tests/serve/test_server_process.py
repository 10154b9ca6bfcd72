"""`aidlc serve` as a real process: uvicorn on a free loopback port over a copy of a workspace.

Each server runs as the `service` principal (inference + monitor) and is called over real sockets
with httpx and with a V2 client nobody here wrote (tritonclient). Startup refusals, TLS, JSON
logs, a rate limit shared by two workers through a real redis-server, a load test at several
times the limit, prediction logs across a clean shutdown and hot swaps of the served version.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from tests.serve.conftest import Served

AIDLC = [sys.executable, "-m", "aidlc"]
PREDICT = "/v1/models/bc:predict"
PREDICT_ROUTE = "/v1/models/{name}:predict"  # how metrics and the access log name it
START_SECONDS = 60.0
STOP_SECONDS = 30.0


# -- starting and stopping real processes ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def cli_env(token: str | None, **extra: str) -> dict[str, str]:
    """The environment of a child `aidlc`: no inherited aidlc or Prometheus settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIDLC_", "PROMETHEUS_"))}
    if token is not None:
        env["AIDLC_TOKEN"] = token
    env.update(extra)
    return env


def configure(root: Path, **serve: Any) -> None:
    """Override `serve:` settings in the workspace's aidlc.yaml (nested dicts merge one level)."""
    path = root / "aidlc.yaml"
    doc = yaml.safe_load(path.read_text()) or {}
    section = doc.get("serve") or {}
    for key, value in serve.items():
        if isinstance(value, dict):
            section[key] = {**(section.get(key) or {}), **value}
        else:
            section[key] = value
    doc["serve"] = section
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def run_cli(
    root: Path | None, token: str | None, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    where = ["-w", str(root)] if root is not None else []
    return subprocess.run(
        [*AIDLC, *where, *args],
        env=cli_env(token, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class Running:
    """A started `aidlc serve` process."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    verify: ssl.SSLContext | bool = True

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def client(self, **options: Any) -> httpx.Client:
        options.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, verify=self.verify, **options)

    def stop(self) -> int:
        """SIGTERM, then wait for the exit code; whatever still runs after that is killed."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        try:
            workers = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            workers = []
        self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            code = None
        for worker in workers:  # psutil checks it is still the same process before killing
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.kill()
        if code is None:
            pytest.fail(
                f"the server did not stop within {STOP_SECONDS} s:\n{self.stderr()[-4000:]}"
            )
        return code


def start(
    root: Path,
    token: str,
    *args: str,
    logs: Path,
    scheme: str = "http",
    verify: ssl.SSLContext | bool = True,
) -> Running:
    """Start `aidlc serve` on a free port and wait until GET /readyz answers 200."""
    port = free_port()
    log = logs / f"serve-{port}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*AIDLC, "-w", str(root), "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            # The metrics folder of several workers is made under $TMPDIR: here, in `logs`.
            env=cli_env(token, TMPDIR=str(logs)),
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    running = Running(proc, f"{scheme}://127.0.0.1:{port}", log, verify)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{running.stderr()[-4000:]}")
        try:
            if httpx.get(f"{running.url}/readyz", verify=verify, timeout=2).status_code == 200:
                return running
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    running.stop()
    pytest.fail(f"the server was not ready within {START_SECONDS} s:\n{running.stderr()[-4000:]}")


@contextlib.contextmanager
def serving(root: Path, token: str, *args: str, logs: Path, **options: Any) -> Iterator[Running]:
    running = start(root, token, *args, logs=logs, **options)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def server(served: Served, tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """`server(*cli_args, **serve_settings)`: `aidlc serve` over the `served` copy, as `service`;
    each one must exit 0 when stopped."""
    started: list[Running] = []

    def make(*args: str, **settings: Any) -> Running:
        if settings:
            configure(served.root, **settings)
        running = start(served.root, served.tokens["service"], *args, logs=tmp_path)
        started.append(running)
        return running

    yield make
    codes = [running.stop() for running in started]
    assert codes == [0] * len(started), [r.stderr()[-2000:] for r in started]


@pytest.fixture(scope="module")
def shared(served_template: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One server with default settings for the tests of this module that change nothing."""
    base = tmp_path_factory.mktemp("shared-server")
    root = base / "ws"
    shutil.copytree(served_template.root, root, symlinks=True)
    with serving(root, served_template.tokens["service"], logs=base) as running:
        yield running


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port, without persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/system-deps.sh installs it)")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [*argv, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def predict(
    client: httpx.Client, token: str, rows: list[dict[str, Any]], **headers: str
) -> httpx.Response:
    return client.post(
        PREDICT, json={"records": rows}, headers={"Authorization": f"Bearer {token}", **headers}
    )


# -- refusals before anything is bound -----------------------------------------------------------


def test_non_loopback_address_without_tls_is_refused_and_nothing_is_bound(served: Served) -> None:
    port = free_port()
    done = run_cli(
        served.root, served.tokens["service"], "serve", "--host", "0.0.0.0", "--port", str(port)
    )
    assert done.returncode == 2, done.stderr
    assert "refusing to serve on 0.0.0.0 without TLS" in done.stderr
    assert "--allow-plain-http" in done.stderr  # the hint names the explicit override
    assert port_is_free(port, "0.0.0.0")


def test_plain_http_override_is_documented() -> None:
    done = run_cli(None, None, "serve", "--help")
    assert done.returncode == 0, done.stderr
    assert "--allow-plain-http" in done.stdout and "TLS" in done.stdout


def test_certificate_without_key_is_a_usage_error(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not used")
    done = run_cli(tmp_path, None, "serve", "--tls-cert", str(cert), "--port", str(free_port()))
    assert done.returncode == 2, done.stderr
    assert "give both --tls-cert and --tls-key" in done.stderr


@pytest.mark.parametrize(
    ("who", "code", "message"),
    [
        ("admin2", 4, "admin2 holds admin beyond what a server needs"),
        ("trainer", 4, "trainer cannot run the server: it needs the inference role"),
        (None, 3, "no token given"),
    ],
)
def test_server_principal_must_hold_inference_and_nothing_more(
    served: Served, tmp_path: Path, who: str | None, code: int, message: str
) -> None:
    port = free_port()
    token = served.tokens[who] if who else None
    # No token: neither $AIDLC_TOKEN nor a credentials file (the path given does not exist).
    done = run_cli(
        served.root, token, "serve", "--port", str(port), AIDLC_TOKEN_FILE=str(tmp_path / "none")
    )
    assert done.returncode == code, done.stderr
    assert message in done.stderr
    assert port_is_free(port)


# -- one shared server with default settings ----------------------------------------------------


def test_access_log_is_json_lines_with_request_ids(
    shared: Running, served_template: Served, records: list[dict[str, Any]]
) -> None:
    token = served_template.tokens["inference"]
    with shared.client() as client:
        ok = predict(client, token, records[:2], **{"X-Request-Id": "proc-test-ok-1"})
        bad = predict(client, "not-a-token", records[:1], **{"X-Request-Id": "proc-test-bad-1"})
    assert ok.status_code == 200 and ok.headers["x-request-id"] == "proc-test-ok-1"
    assert bad.status_code == 401 and bad.headers["x-request-id"] == "proc-test-bad-1"
    deadline = time.monotonic() + 5
    while "proc-test-bad-1" not in shared.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in shared.stderr().splitlines() if line.strip()]
    assert lines[0].startswith("aidlc: serving ")  # the CLI's banner, before logging is set up
    docs = [json.loads(line) for line in lines[1:]]  # every later line is one JSON object
    assert all(isinstance(d, dict) and {"ts", "level", "logger", "msg"} <= set(d) for d in docs)
    by_id = {d["request_id"]: d for d in docs if d["logger"] == "aidlc.access"}
    assert by_id["proc-test-ok-1"]["msg"] == f"POST {PREDICT_ROUTE} 200"
    assert by_id["proc-test-bad-1"]["msg"] == f"POST {PREDICT_ROUTE} 401"
    assert isinstance(by_id["proc-test-ok-1"]["ms"], float)
    assert token not in shared.stderr()


def test_tritonclient_infers_like_the_v1_endpoint(
    shared: Running, served_template: Served, records: list[dict[str, Any]]
) -> None:
    import numpy as np
    import tritonclient.http as triton

    token = served_template.tokens["inference"]
    auth = {"Authorization": f"Bearer {token}"}
    rows = records[:25]
    with shared.client() as client:
        v1 = predict(client, token, rows)
    assert v1.status_code == 200, v1.text
    expected = [p["prediction"] for p in v1.json()["predictions"]]

    v2 = triton.InferenceServerClient(url=shared.url.removeprefix("http://"))
    try:
        assert v2.is_server_live() is True
        assert v2.is_server_ready() is True
        assert v2.is_model_ready("bc", headers=auth) is True
        assert v2.is_model_ready("bc") is False  # no token, no answer
        meta = v2.get_model_metadata("bc", headers=auth)
        assert meta["name"] == "bc" and meta["versions"] == ["1"]
        features = [i["name"] for i in meta["inputs"]]
        assert sorted(features) == sorted(rows[0])
        assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
        inputs = []
        for name in features:
            tensor = triton.InferInput(name, [len(rows)], "FP64")
            tensor.set_data_from_numpy(
                np.array([r[name] for r in rows], dtype=np.float64), binary_data=False
            )
            inputs.append(tensor)
        result = v2.infer(
            "bc",
            inputs=inputs,
            outputs=[triton.InferRequestedOutput("predict", binary_data=False)],
            headers=auth,
            request_id="triton-1",
        )
    finally:
        v2.close()
    got = result.as_numpy("predict")
    assert got is not None and got.shape == (len(rows),)
    assert [v.decode() if isinstance(v, bytes) else v for v in got.tolist()] == expected
    response = result.get_response()
    assert response["model_name"] == "bc" and response["model_version"] == "1"
    assert response["id"] == "triton-1"


# -- TLS ----------------------------------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (IP SAN) and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def test_tls_serves_https_with_hsts_and_refuses_plain_http(
    served: Served, tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    cert, key = self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    with serving(
        served.root, served.tokens["service"], "--tls-cert", str(cert), "--tls-key", str(key),
        logs=tmp_path, scheme="https", verify=trust,
    ) as running:  # fmt: skip
        assert running.url.startswith("https://127.0.0.1:")
        with running.client() as client:
            r = predict(client, served.tokens["inference"], records[:3])
        assert r.status_code == 200, r.text
        assert len(r.json()["predictions"]) == 3 and r.json()["version"] == 1
        assert r.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
        with pytest.raises(httpx.TransportError):
            httpx.get(running.url.replace("https://", "http://") + "/healthz", timeout=5)
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the certificate
            httpx.get(running.url + "/healthz", timeout=5)
        assert running.proc.poll() is None


# -- a rate limit shared by two workers -----------------------------------------------------------


def fire_fresh(
    running: Running, token: str, row: dict[str, Any], total: int, threads: int = 4
) -> list[httpx.Response]:
    """`total` predictions from several threads, each on a new connection (`Connection: close`),
    so that both workers accept some of them."""
    from concurrent.futures import ThreadPoolExecutor

    def send(count: int) -> list[httpx.Response]:
        fresh = httpx.Limits(max_keepalive_connections=0)
        with running.client(limits=fresh) as client:
            return [predict(client, token, [row], Connection="close") for _ in range(count)]

    shares = [total // threads + (i < total % threads) for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        return [r for answers in pool.map(send, shares) for r in answers]


def per_worker(logs: Path, endpoint: str = PREDICT_ROUTE) -> dict[str, float]:
    """Requests to `endpoint` counted by each worker, read from its own multiprocess metrics
    file (named after its pid) in the folder `aidlc serve --workers N` made under $TMPDIR."""
    from prometheus_client.multiprocess import MultiProcessCollector

    folders = list(logs.glob("aidlc-metrics-*"))
    assert len(folders) == 1, folders
    counts = {
        db.stem: sum(
            s.value
            for metric in MultiProcessCollector.merge([str(db)])
            for s in metric.samples
            if s.name == "aidlc_http_requests_total" and s.labels["endpoint"] == endpoint
        )
        for db in folders[0].glob("counter_*.db")
    }
    return {k: v for k, v in counts.items() if v}


def all_workers_ready(running: Running, logs: Path, workers: int) -> None:
    """/readyz answered 200 by one worker; wait until every worker has answered one."""
    deadline = time.monotonic() + START_SECONDS
    fresh = httpx.Limits(max_keepalive_connections=0)
    with running.client(limits=fresh, timeout=5) as client:
        while len(per_worker(logs, "/readyz")) < workers:
            if time.monotonic() > deadline:
                pytest.fail(f"not every worker got ready:\n{running.stderr()[-4000:]}")
            assert client.get("/readyz", headers={"Connection": "close"}).status_code == 200
            time.sleep(0.05)


def scrape(running: Running, token: str) -> dict[str, float]:
    """aidlc_http_requests_total of the predict endpoint by status code, from GET /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    with running.client() as client:
        r = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    by_code: Counter[str] = Counter()
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if s.name == "aidlc_http_requests_total" and s.labels["endpoint"] == PREDICT_ROUTE:
                by_code[s.labels["code"]] += int(s.value)
    return dict(by_code)


def test_two_workers_share_one_rate_limit_through_redis(
    server: Callable[..., Running],
    served: Served,
    redis_url: str,
    records: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    running = server("--workers", "2", rate_limit="30/minute", rate_limit_storage=redis_url)
    all_workers_ready(running, tmp_path, 2)
    answers = fire_fresh(running, served.tokens["inference"], records[0], 80)
    codes = Counter(r.status_code for r in answers)
    assert codes == {200: 30, 429: 50}
    for r in answers:
        if r.status_code == 429:
            assert 1 <= int(r.headers["retry-after"]) <= 60
            assert r.headers["x-ratelimit-limit"] == "30"
            assert "rate limit of 30/minute exceeded" in r.json()["error"]
    workers = per_worker(tmp_path)
    print(f"\nredis://, 2 workers: {dict(codes)}; predict requests per worker {workers}")
    assert len(workers) == 2 and sum(workers.values()) == 80, workers  # both workers answered
    # /metrics of whichever worker answers sums every worker's counters.
    assert scrape(running, served.tokens["monitor"]) == {"200": 30, "429": 50}


@pytest.mark.slow
def test_two_workers_with_in_process_storage_count_separately(
    server: Callable[..., Running], served: Served, records: list[dict[str, Any]], tmp_path: Path
) -> None:
    running = server("--workers", "2", rate_limit="30/minute", rate_limit_storage="memory://")
    all_workers_ready(running, tmp_path, 2)
    assert "each worker counts its own limit" in running.stderr()
    answers = fire_fresh(running, served.tokens["inference"], records[0], 80)
    codes = Counter(r.status_code for r in answers)
    workers = per_worker(tmp_path)
    print(f"\nmemory://, 2 workers: {dict(codes)}; predict requests per worker {workers}")
    assert len(workers) == 2 and sum(workers.values()) == 80, workers
    # Each worker let through its own 30 (or all it got): more than 30 in all.
    assert codes[200] == sum(min(30, int(n)) for n in workers.values()), (codes, workers)
    assert 30 < codes[200] <= 60 and codes[429] == 80 - codes[200]


# -- load, shutdown and hot swaps (slow) ----------------------------------------------------------


@dataclass
class Tally:
    """What one load-generating client saw."""

    codes: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


LIMIT_PER_SECOND = 50
LOAD_SECONDS = 20.0
WARM_SECONDS = 4.0
MAX_REQUESTS = 20_000  # a bound on the whole load test, whatever the machine's speed


@pytest.mark.slow
def test_load_at_five_times_the_limit_keeps_in_quota_clients_whole(
    server: Callable[..., Running], served: Served, records: list[dict[str, Any]]
) -> None:
    from aidlc.core import principals

    # 4 polite clients at 20/s each (under their 50/s) and one token sent at 170/s from 3
    # threads: 250/s in all, 5x the limit.
    polite, polite_rate, greedy_threads, greedy_rate = 4, 20.0, 3, 170.0
    with served.open("admin") as ws:
        tokens = [principals.add(ws, f"client{i}", ["inference"])[1] for i in range(polite)]
    # Batches written every second, so the log writer's memory is part of the warm-up.
    running = server(
        rate_limit=f"{LIMIT_PER_SECOND}/second",
        rate_limit_storage="memory://",
        prediction_log={"flush_seconds": 1.0},
    )
    process = psutil.Process(running.proc.pid)
    stop = threading.Event()
    budget = threading.Semaphore(MAX_REQUESTS)
    tallies: dict[str, Tally] = {}

    def client(name: str, token: str, interval: float) -> None:
        tally = tallies[name] = Tally()
        i = 0
        with running.client(timeout=15) as http:
            next_at = time.monotonic()
            while not stop.is_set() and budget.acquire(blocking=False):
                try:
                    r = predict(http, token, [records[i % len(records)]])
                    tally.codes[r.status_code] += 1
                except httpx.HTTPError as exc:
                    tally.failures.append(type(exc).__name__)
                i += 1
                # Paced: never faster than `interval`, and no catching up after a slow answer.
                next_at = max(next_at + interval, time.monotonic())
                stop.wait(max(0.0, next_at - time.monotonic()))

    threads = [
        threading.Thread(target=client, args=(f"polite{i}", t, 1 / polite_rate))
        for i, t in enumerate(tokens)
    ] + [
        threading.Thread(
            target=client,
            args=(f"greedy{i}", served.tokens["inference"], greedy_threads / greedy_rate),
        )
        for i in range(greedy_threads)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    stop.wait(WARM_SECONDS)  # caches filled, log batches written, the allocator at working size
    rss = [process.memory_info().rss]
    while not stop.wait(1.0) and time.monotonic() - started < LOAD_SECONDS:
        rss.append(process.memory_info().rss)
    stop.set()
    for t in threads:
        t.join(30)
    elapsed = time.monotonic() - started
    rss.append(process.memory_info().rss)

    polite_codes, greedy_codes = Counter[int](), Counter[int]()
    failures = []
    for name, tally in tallies.items():
        (polite_codes if name.startswith("polite") else greedy_codes).update(tally.codes)
        failures += tally.failures
    polite_sent = sum(polite_codes.values())
    total = polite_sent + sum(greedy_codes.values()) + len(failures)
    rate = total / elapsed
    print(  # the numbers, for the report (pytest -s)
        f"\nload: {total} requests in {elapsed:.1f} s = {rate:.0f}/s "
        f"({rate / LIMIT_PER_SECOND:.1f}x the limit); polite {dict(polite_codes)}; "
        f"greedy {dict(greedy_codes)}; failures {failures}; "
        f"rss MiB {[round(m / 2**20, 1) for m in rss]}"
    )
    assert len(tallies) == len(threads) and not failures
    assert not [c for c in polite_codes + greedy_codes if c >= 500]
    assert polite_sent >= polite * polite_rate * LOAD_SECONDS * 0.5  # they really sent
    assert polite_codes[200] >= 0.999 * (polite_sent + len(failures)), polite_codes
    assert greedy_codes[429] > 0 and greedy_codes[200] > 0
    # The greedy token got no more than its limit per second (+1 s for the moving window).
    assert greedy_codes[200] <= LIMIT_PER_SECOND * (elapsed + 1)
    assert rate >= 2 * LIMIT_PER_SECOND, f"the load generator reached only {rate:.0f}/s"
    assert max(rss) - rss[0] < 30 * 2**20  # flat after warm-up
    assert running.proc.poll() is None
    with running.client() as http:
        assert http.get("/healthz").status_code == 200


@pytest.mark.slow
def test_prediction_logs_written_under_load_survive_a_clean_shutdown(
    server: Callable[..., Running], served: Served, records: list[dict[str, Any]]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from aidlc.serve.predlog import read_batches

    n, threads = 500, 4
    # Nothing is flushed before the shutdown: every row must come from the drain on close.
    running = server(
        rate_limit="100000/second", prediction_log={"batch_rows": 100_000, "flush_seconds": 3600}
    )
    token = served.tokens["inference"]

    def send(k: int) -> dict[str, dict[str, Any]]:
        sent = {}
        with running.client() as http:
            for i in range(k, n, threads):
                row = records[i % len(records)]
                r = predict(http, token, [row])
                assert r.status_code == 200, r.text
                sent[r.json()["predictions"][0]["prediction_id"]] = row
        return sent

    with ThreadPoolExecutor(threads) as pool:
        sent = {pid: row for part in pool.map(send, range(threads)) for pid, row in part.items()}
    assert len(sent) == n
    with served.open("monitor") as monitor:
        assert read_batches(monitor, "predictions") == []  # still queued in the server
    assert running.stop() == 0, running.stderr()[-4000:]
    with served.open("monitor") as monitor:
        logged = read_batches(monitor, "predictions")
    assert len(logged) == n
    assert {row["prediction_id"] for row in logged} == set(sent)
    for row in logged:
        assert row["model"] == "bc" and row["version"] == 1 and row["route"] == "production"
        assert json.loads(row["inputs"]) == sent[row["prediction_id"]]
        assert json.loads(row["output"]) in ("benign", "malignant")


@pytest.mark.slow
def test_running_server_follows_production_and_rollback(
    server: Callable[..., Running], served: Served, records: list[dict[str, Any]]
) -> None:
    from aidlc.registry import approval

    running = server(poll_seconds=0.5)
    token = served.tokens["inference"]

    def version_within(seconds: float, want: int) -> float:
        started = time.monotonic()
        with running.client() as http:
            while time.monotonic() - started < seconds:
                r = predict(http, token, records[:1])
                assert r.status_code == 200, r.text
                if r.json()["version"] == want:
                    return time.monotonic() - started
                time.sleep(0.1)
        pytest.fail(f"the server did not serve version {want} within {seconds} s")

    assert version_within(1, 1) < 1
    with served.open("approver") as approver:
        approval.set_alias(approver, "bc@2", "production", reason="hot swap test")
    swapped = version_within(10, 2)
    done = run_cli(
        served.root, served.tokens["approver"], "deploy", "rollback", "bc", "--reason", "test"
    )
    assert done.returncode == 0, done.stderr
    assert "production of bc is back at bc@1" in done.stdout
    back = version_within(10, 1)
    print(f"\nswap seen after {swapped:.2f} s, rollback after {back:.2f} s")
    with served.open("auditor") as auditor:
        events = auditor.audit.events(action="deploy.rollback")
    assert [(e.actor, e.resource, e.outcome) for e in events] == [("approver", "model:bc", "ok")]
    assert events[0].details["from"] == 2 and events[0].details["to"] == 1
    logged = [json.loads(line) for line in running.stderr().splitlines() if line.startswith("{")]
    swaps = [line["msg"] for line in logged if line["msg"].startswith("serving bc@")]
    assert swaps[:3] == ["serving bc@1", "serving bc@2", "serving bc@1"]
