"""The container images: their Dockerfiles read as Docker reads them, and the entry points they
call run for real (there is no Docker engine here, so the images themselves are not built).

The API test starts the image's exact ENTRYPOINT + CMD argv (only the bind address and port are
moved to a free loopback port) with the image's environment, over a copy of a served workspace,
and checks that it writes nowhere but $TMPDIR and the workspace's metadata database.
"""

from __future__ import annotations

import hashlib
import http.server
import importlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import typer

from tests.cli.test_cli import run
from tests.serve.conftest import Served, served, served_template  # noqa: F401  (fixtures)
from tests.serve.test_server_process import free_port

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"
API = DOCKER / "Dockerfile.api"
LAMBDA = DOCKER / "Dockerfile.lambda"
VENV_BIN = Path(sys.prefix) / "bin"
SECRET_NAME = re.compile(r"(?i)(token|passw|secret|api_?key|private|credential)")


# -- a small Dockerfile reader --------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        """The JSON-array form (ENTRYPOINT ["a", "b"]); shell form is refused."""
        value = json.loads(self.args)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self.args
        return value


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"no {keyword} in stage {self.name or self.base}"
        return found[-1]

    def env(self) -> dict[str, str]:
        """ENV KEY=VALUE pairs of this stage (the `KEY=VALUE ...` form)."""
        out: dict[str, str] = {}
        for ins in self.all("ENV"):
            for pair in shlex.split(ins.args):
                key, sep, value = pair.partition("=")
                assert sep, f"ENV {ins.args!r}: use KEY=VALUE"
                out[key] = value
        return out


def parse_dockerfile(path: Path) -> tuple[list[Stage], list[Instruction]]:
    """Stages and the instructions before the first FROM (global ARGs)."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comment lines, also inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, f"{path.name} ends inside a continued line"
    head: list[Instruction] = []
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        ins = Instruction(keyword.upper(), args.strip())
        if ins.keyword == "FROM":
            words = ins.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif stages:
            stages[-1].instructions.append(ins)
        else:
            head.append(ins)
    return stages, head


def command_path(argv: list[str]) -> tuple[object, list[str]]:
    """The click command an `aidlc ...` argv reaches, and the words after its name."""
    from aidlc.cli import app

    assert argv[0] == "aidlc", argv
    command = typer.main.get_command(app)
    rest = argv[1:]
    while getattr(command, "commands", None) and rest and rest[0] in command.commands:
        command = command.commands[rest[0]]
        rest = rest[1:]
    assert not getattr(command, "commands", None), f"{argv} names a group, not a command"
    return command, rest


def assert_parses(argv: list[str]) -> None:
    """Every option of `argv` exists on its command and gets its value (click's own parser)."""
    command, rest = command_path(argv)
    parser = command.make_parser(command.context_class(command, info_name=argv[-1]))
    _, extra, _ = parser.parse_args(list(rest))
    assert extra == [], f"{argv}: unexpected arguments {extra}"


def file_digests(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not str(p.relative_to(root)).startswith(skip)
    }


# -- the API image ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api() -> list[Stage]:
    stages, head = parse_dockerfile(API)
    assert head == []
    return stages


def test_api_image_installs_in_a_builder_stage_and_runs_from_a_clean_one(api: list[Stage]) -> None:
    builder, runtime = api
    assert (builder.base, builder.name) == ("python:3.11-slim", "builder")
    assert (runtime.base, runtime.name) == ("python:3.11-slim", "runtime")
    install = " ".join(i.args for i in builder.all("RUN"))
    assert "-c requirements.lock" in install and "--only-binary=:all:" in install
    copies = [i.args for i in runtime.all("COPY")]
    assert copies == ["--from=builder /opt/aidlc /opt/aidlc"]  # the venv, not the sources
    # Nothing in the runtime stage fetches or compiles: no RUN beyond creating the user.
    assert [i.args.split()[0] for i in runtime.all("RUN")] == ["groupadd"]


def test_api_image_runs_as_a_fixed_non_root_uid(api: list[Stage]) -> None:
    runtime = api[-1]
    user = runtime.last("USER").args
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) >= 1000 and gid == uid, user
    created = runtime.all("RUN")[0].args
    assert f"--uid {uid}" in created and f"--gid {gid}" in created
    assert "--shell /usr/sbin/nologin" in created
    # USER comes before the entry point is set, so nothing later runs as root.
    keywords = [i.keyword for i in runtime.instructions]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")


def test_api_image_writes_only_under_tmp(api: list[Stage]) -> None:
    env = api[-1].env()
    assert env["TMPDIR"] == "/tmp" and env["HOME"] == "/tmp"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["AIDLC_WORKSPACE"] == "/workspace"
    assert env["PATH"].startswith("/opt/aidlc/bin:")
    assert "compileall" in " ".join(i.args for i in api[0].all("RUN"))  # no .pyc written later


def test_api_healthcheck_calls_a_command_that_exists(api: list[Stage]) -> None:
    check = api[-1].last("HEALTHCHECK").args
    options, _, command = check.partition("CMD ")
    assert options.split() == [
        "--interval=30s",
        "--timeout=5s",
        "--start-period=60s",
        "--retries=3",
    ]
    argv = json.loads(command)
    assert argv[:2] == ["aidlc", "health"] and "http://127.0.0.1:8080/healthz" in argv
    assert_parses(argv)
    assert api[-1].last("EXPOSE").args == "8080"


def test_api_entry_point_is_exec_form_aidlc_serve_on_8080(api: list[Stage]) -> None:
    runtime = api[-1]
    argv = runtime.last("ENTRYPOINT").exec_form() + runtime.last("CMD").exec_form()
    assert argv == [
        "aidlc", "serve", "--host", "0.0.0.0", "--port", "8080", "--allow-plain-http",
    ]  # fmt: skip
    assert_parses(argv)


@pytest.mark.slow
def test_api_entry_point_serves_healthz_and_the_healthcheck_follows_it(
    api: list[Stage],
    served: Served,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    runtime = api[-1]
    image_env = runtime.env()
    port = free_port()
    argv = runtime.last("ENTRYPOINT").exec_form() + runtime.last("CMD").exec_form()
    # As the container binds 0.0.0.0:8080, this binds a free loopback port; the rest is exact,
    # plus `--workers 2` given as `docker run IMAGE --workers 2` would, so that the Prometheus
    # multiprocess folder is made too.
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    argv += ["--workers", "2"]
    tmp, home = tmp_path / "tmp", tmp_path / "home"
    tmp.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIDLC_", "PROMETHEUS_"))}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONDONTWRITEBYTECODE=image_env["PYTHONDONTWRITEBYTECODE"],
        PYTHONUNBUFFERED=image_env["PYTHONUNBUFFERED"],
        TMPDIR=str(tmp),  # the image's /tmp tmpfs
        HOME=str(home),  # the image's HOME is /tmp too; kept apart here to see it stays empty
        AIDLC_WORKSPACE=str(served.root),  # the image's /workspace mount
        AIDLC_TOKEN=served.tokens["service"],
    )
    # The only thing the server may change in the workspace is its metadata database.
    database = (".aidlc/aidlc.db",)
    before = file_digests(served.root, skip=database)
    health_argv = json.loads(runtime.last("HEALTHCHECK").args.partition("CMD ")[2])
    health_argv[health_argv.index("--url") + 1] = f"http://127.0.0.1:{port}/healthz"
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            argv, cwd=served.root, env=env, stdout=subprocess.DEVNULL, stderr=sink
        )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code
            except httpx.TransportError:
                status = None
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, log.read_text()[-3000:]
        alive = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
        up = subprocess.run(health_argv, env=env, capture_output=True, text=True, timeout=60)
        assert (up.returncode, up.stdout) == (0, f"http://127.0.0.1:{port}/healthz: ok\n")
        metrics = [p for p in tmp.iterdir() if p.name.startswith("aidlc-metrics-")]
        assert len(metrics) == 1 and any(metrics[0].glob("*.db")), sorted(tmp.iterdir())
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, log.read_text()[-3000:]
    down = subprocess.run(health_argv, env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 1
    assert f"http://127.0.0.1:{port}/healthz is not answering" in down.stderr
    assert "Traceback" not in down.stderr + log.read_text()
    assert file_digests(served.root, skip=database) == before
    assert list(home.iterdir()) == []


def test_the_healthcheck_fails_on_an_answer_other_than_200(tmp_path: Path) -> None:
    class Sick(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sick)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
        sick = run("health", "--url", url, "--timeout", "5")
    finally:
        server.shutdown()
        server.server_close()
    assert sick.returncode == 1
    assert sick.stderr == f"aidlc: error: {url} answered HTTP 503, not 200\n"
    wrong = run("health", "--url", "file:///etc/passwd")
    assert wrong.returncode == 2
    assert "--url must be an http:// or https:// URL" in wrong.stderr


# -- the Lambda image -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lam() -> list[Stage]:
    stages, head = parse_dockerfile(LAMBDA)
    assert head == []
    return stages


def test_lambda_image_installs_aidlc_aws_with_the_lock(lam: list[Stage]) -> None:
    builder, runtime = lam
    assert builder.base == runtime.base == "public.ecr.aws/lambda/python:3.12"
    install = " ".join(i.args for i in builder.all("RUN"))
    assert "-c requirements.lock" in install and '"${wheel}[aws]"' in install
    assert "--only-binary=:all:" in install and "--target /opt/function" in install
    assert [i.args for i in runtime.all("COPY")] == [
        "--from=builder /opt/function ${LAMBDA_TASK_ROOT}"
    ]
    assert runtime.env()["AIDLC_WORKSPACE"] == "${LAMBDA_TASK_ROOT}/workspace"
    assert runtime.env()["TMPDIR"] == "/tmp"


def test_lambda_cmd_names_a_handler_that_refuses_a_malformed_event(lam: list[Stage]) -> None:
    from aidlc.errors import InvalidInput

    (target,) = lam[-1].last("CMD").exec_form()
    module, _, name = target.rpartition(".")
    handler = getattr(importlib.import_module(module), name)
    with pytest.raises(InvalidInput, match="not an S3 event notification: no Records list"):
        handler({"hello": "world"}, None)
    broken = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}
    with pytest.raises(InvalidInput, match="an S3 record without bucket name or object key"):
        handler(broken, None)


# -- both -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [API, LAMBDA], ids=["api", "lambda"])
def test_base_images_are_pinned_and_nothing_is_fetched_or_secret(path: Path) -> None:
    stages, _ = parse_dockerfile(path)
    names = {s.name for s in stages}
    for stage in stages:
        if stage.base in names:
            continue
        image, _, tag = stage.base.rpartition(":")
        assert image and "/" not in tag and tag not in ("", "latest"), stage.base
        for ins in stage.instructions:
            assert not (ins.keyword == "ADD" and re.search(r"https?://", ins.args)), ins
            if ins.keyword in ("ENV", "ARG"):
                names_set = [p.partition("=")[0] for p in shlex.split(ins.args)]
                assert not [n for n in names_set if SECRET_NAME.search(n)], ins
                assert "aidlc_" not in ins.args  # no token value
            if ins.keyword == "RUN":
                assert not re.search(r"(curl|wget)\s", ins.args), ins


@pytest.mark.parametrize("path", [API, LAMBDA], ids=["api", "lambda"])
def test_every_copied_path_exists_and_passes_the_dockerignore(path: Path) -> None:
    allowed = [
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    assert (REPO / ".dockerignore").read_text().splitlines()[2] == "*"  # deny by default
    stages, _ = parse_dockerfile(path)
    sources = []
    for stage in stages:
        for ins in stage.all("COPY"):
            words = ins.args.split()
            if words[0].startswith("--from="):
                continue
            sources += words[:-1]
    assert sources == ["pyproject.toml", "README.md", "requirements.lock", "src"]
    for source in sources:
        assert (REPO / source).exists()
        assert source in allowed


def _tools_bin() -> Path:
    given = os.environ.get("AIDLC_TOOLS_BIN")
    tools = Path(given) if given else Path(sys.prefix).parent / ".venv-tools" / "bin"
    if not (tools / "checkov").exists():
        pytest.skip(f"checkov is not installed in {tools} (`make test` creates the tools venv)")
    return tools


@pytest.mark.slow
def test_checkov_finds_nothing_in_the_dockerfiles() -> None:
    checkov = _tools_bin() / "checkov"
    done = subprocess.run(
        [str(checkov), "-d", str(DOCKER), "--framework", "dockerfile", "--skip-download",
         "-o", "json"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    report = json.loads(done.stdout)
    results = report["results"]
    assert results["failed_checks"] == [], done.stdout[-3000:]
    skipped = sorted((c["check_id"], Path(c["file_path"]).name) for c in results["skipped_checks"])
    assert skipped == [("CKV_DOCKER_2", "Dockerfile.lambda"), ("CKV_DOCKER_3", "Dockerfile.lambda")]
    passed = {(c["check_id"], Path(c["file_path"]).name) for c in results["passed_checks"]}
    assert passed >= {
        ("CKV_DOCKER_2", "Dockerfile.api"),  # HEALTHCHECK
        ("CKV_DOCKER_3", "Dockerfile.api"),  # a USER
        ("CKV_DOCKER_7", "Dockerfile.api"),  # base images not `latest`
        ("CKV_DOCKER_7", "Dockerfile.lambda"),
    }
