"""`aidlc init --ci github`: the workflows it writes parse, reference only commands and options
that exist, keep privileges and secrets tight, and their scripts work against a real workspace.

The end-to-end tests run the workflows' own `run:` scripts with bash, as a GitHub runner would
(`bash --noprofile --norc -eo pipefail`), with `${{ secrets.* }}` and `${{ inputs.* }}` filled in
by the test; only the AWS credential step and the HTTP smoke request are not run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from aidlc.cicd import WORKFLOWS
from tests.cli.test_cli import run
from tests.deploy.test_images import assert_parses, command_path
from tests.serve.conftest import RECIPE, Served, served, served_template  # noqa: F401

CI = ".github/workflows/aidlc-ci.yml"
CD = ".github/workflows/aidlc-cd.yml"
VENV_BIN = Path(sys.prefix) / "bin"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")
# Where an `aidlc` command starts in a shell line: at the start, after ; & | ( or a case label ).
COMMAND = re.compile(r"(?:^|[;&|()])\s*aidlc\s+(.*)$")


def load(text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text)
    doc["on"] = doc.pop(True)  # YAML 1.1 reads the key `on` as true
    return doc


def steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, spec in doc["jobs"].items() for step in spec["steps"]]


def aidlc_commands(script: str) -> list[list[str]]:
    """Every `aidlc ...` command line of a shell script, as argv (quotes removed)."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith("#"):
            continue
        match = COMMAND.search(line)
        if match:
            rest = re.split(r"\s(?:>|>>|<|\|\|?|&&|;;)\s|;|\)\s*$", match.group(1))[0]
            found.append(["aidlc", *shlex.split(rest)])
    return found


def check_command(argv: list[str]) -> None:
    """The command exists, its options exist and get values, and its required ones are given."""
    assert_parses(argv)
    command, rest = command_path(argv)
    parser = command.make_parser(command.context_class(command, info_name=argv[-1]))
    values, _, _ = parser.parse_args(list(rest))
    missing = [p.name for p in command.params if p.required and values.get(p.name) is None]
    assert missing == [], f"{shlex.join(argv)}: missing {missing}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    done = run("init", "--ci", "github", str(tmp_path / "project"), "--json")
    assert done.returncode == 0, done.stderr
    root = tmp_path / "project"
    assert json.loads(done.stdout) == {"written": [str(root / CI), str(root / CD)]}
    return root


@pytest.fixture
def ci(project: Path) -> dict[str, Any]:
    return load((project / CI).read_text())


@pytest.fixture
def cd(project: Path) -> dict[str, Any]:
    return load((project / CD).read_text())


# -- what is written ----------------------------------------------------------------------------


def test_written_files_are_the_templates_and_parse(project: Path, ci: dict, cd: dict) -> None:
    for relative, text in WORKFLOWS.items():
        assert (project / relative).read_text() == text
    assert ci["name"] == "aidlc-ci" and cd["name"] == "aidlc-cd"
    assert list(ci["jobs"]) == ["tests", "security", "data", "train", "compliance"]
    assert list(cd["jobs"]) == ["staging", "smoke-test", "canary", "promote"]
    assert ci["on"] == {"pull_request": None, "push": {"branches": ["main"]}}
    assert set(cd["on"]) == {"workflow_dispatch"}
    assert cd["on"]["workflow_dispatch"]["inputs"]["version"]["required"] is True
    # The CD jobs run in order: nothing reaches production without staging, smoke and canary.
    assert [cd["jobs"][j].get("needs") for j in cd["jobs"]] == [
        None, "staging", "smoke-test", "canary",
    ]  # fmt: skip


def test_the_jobs_run_the_gates_the_issue_names(ci: dict, cd: dict) -> None:
    runs = {
        job: " ".join(s.get("run", "") for s in spec["steps"]) for job, spec in ci["jobs"].items()
    }
    assert "python -m pytest" in runs["tests"]
    assert "bandit -q -r src" in runs["security"]
    assert "pip-audit -r requirements.lock" in runs["security"]
    assert 'aidlc data validate "$AIDLC_DATA"' in runs["data"]
    assert 'aidlc data ingest "$AIDLC_DATA"' in runs["data"]
    assert 'aidlc train "$AIDLC_TRAIN_CONFIG" --json' in runs["train"]
    assert 'aidlc models verify "$MODEL_VERSION"' in runs["train"]  # the signature
    assert "aidlc compliance check" in runs["compliance"]
    cd_runs = {
        j: " ".join(s.get("run", "") for s in spec["steps"]) for j, spec in cd["jobs"].items()
    }
    assert "--to staging" in cd_runs["staging"] and "--shadow" in cd_runs["staging"]
    assert "/readyz" in cd_runs["smoke-test"] and ":predict" in cd_runs["smoke-test"]
    assert 'aidlc deploy "$MODEL_VERSION" --canary "$CANARY_PERCENT"' in cd_runs["canary"]
    assert 'aidlc deploy "$MODEL_VERSION"' in cd_runs["promote"]


def test_every_aidlc_command_exists_with_the_options_it_is_given(ci: dict, cd: dict) -> None:
    commands = [
        argv
        for doc in (ci, cd)
        for _, step in steps(doc)
        for argv in aidlc_commands(step.get("run", ""))
    ]
    for argv in commands:
        check_command(argv)
    paths = sorted({" ".join(argv[:3]) for argv in commands})
    assert paths == [
        "aidlc compliance check", "aidlc data ingest", "aidlc data validate",
        'aidlc deploy $MODEL_VERSION', "aidlc deploy status", "aidlc deploy stop",
        "aidlc models approve", "aidlc models verify", "aidlc train $AIDLC_TRAIN_CONFIG",
    ]  # fmt: skip
    assert len(commands) == 14


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("aidlc model register churn", "names a group"),
        ("aidlc models register churn@1", "names a group"),
        ('aidlc deploy "$V" --canary', "requires an argument"),
        ('aidlc deploy "$V" --percent 10', "No such option: --percent"),
        ('aidlc models approve "$V"', "missing ['reason']"),
        ("aidlc compliance check extra", "unexpected arguments ['extra']"),
    ],
)
def test_the_command_check_catches_what_does_not_exist(line: str, problem: str) -> None:
    (argv,) = aidlc_commands(line)
    with pytest.raises(Exception, match=re.escape(problem)):
        check_command(argv)


def test_every_run_script_is_valid_bash_without_expressions(ci: dict, cd: dict) -> None:
    for doc in (ci, cd):
        for job, step in steps(doc):
            script = step.get("run")
            if script is None:
                continue
            # ${{ }} inside a script is pasted in before bash runs: a script-injection hole.
            assert "${{" not in script, (job, step.get("name"))
            done = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
            assert done.returncode == 0, (job, step.get("name"), done.stderr)


def test_permissions_are_least_privilege(ci: dict, cd: dict) -> None:
    for doc in (ci, cd):
        assert doc["permissions"] == {"contents": "read"}
        for job, spec in doc["jobs"].items():
            aws = any(str(s.get("uses", "")).startswith("aws-actions/") for s in spec["steps"])
            expected = {"contents": "read", "id-token": "write"} if aws else None
            assert spec.get("permissions") == expected, job


def test_actions_are_pinned_by_commit_with_the_version_named(project: Path) -> None:
    for relative in (CI, CD):
        text = (project / relative).read_text()
        uses = re.findall(r"uses:\s*(\S+)(.*)", text)
        assert len(uses) >= 6
        for action, comment in uses:
            assert PINNED.match(action), action
            assert re.fullmatch(r"\s+# v\d+\.\d+\.\d+", comment), comment


def test_secrets_come_only_from_the_secrets_context(project: Path, ci: dict, cd: dict) -> None:
    for doc in (ci, cd):
        blocks = [doc.get("env", {})] + [spec.get("env", {}) for spec in doc["jobs"].values()]
        blocks += [step.get("env", {}) for _, step in steps(doc)]
        for block in blocks:
            for name, value in block.items():
                if re.search(r"TOKEN|SECRET|PASSWORD|DATABASE_URL", name):
                    assert re.fullmatch(r"\$\{\{ secrets\.[A-Z_]+ \}\}", str(value)), name
    for relative in (CI, CD):
        text = (project / relative).read_text()
        assert not re.search(r"aidlc_[A-Za-z0-9_-]{20,}", text)  # no token value
        assert "AKIA" not in text and "aws-secret-access-key" not in text  # OIDC, no keys


def test_production_promotion_waits_for_a_protected_environment(cd: dict, project: Path) -> None:
    promote = cd["jobs"]["promote"]
    assert promote["environment"] == "production"
    assert promote["env"]["AIDLC_TOKEN"] == "${{ secrets.AIDLC_PROMOTER_TOKEN }}"
    # The promoter's token is used by the promote job only.
    others = [j for j in cd["jobs"] if j != "promote"]
    assert all("AIDLC_PROMOTER_TOKEN" not in json.dumps(cd["jobs"][j]) for j in others)
    assert all(cd["jobs"][j]["environment"] == "staging" for j in others)
    text = (project / CD).read_text()
    assert "Required reviewers" in text  # the comment that tells users to protect it
    # The canary cannot promote itself around the reviewers.
    assert "--promote-after 10000000" in cd["jobs"]["canary"]["steps"][-1]["run"]


# -- refusing to overwrite -------------------------------------------------------------------------


def test_existing_workflows_are_kept_unless_force(project: Path) -> None:
    mine = "name: my own\n"
    (project / CI).write_text(mine)
    (project / CD).unlink()
    again = run("init", "--ci", "github", str(project))
    assert again.returncode == 6
    assert again.stderr == (
        f"aidlc: error: {project / CI} already exist(s) (pass --force to overwrite)\n"
    )
    assert (project / CI).read_text() == mine
    assert not (project / CD).exists()  # a refusal writes nothing at all
    forced = run("init", "--ci", "github", str(project), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (project / CI).read_text() == WORKFLOWS[CI]
    assert (project / CD).read_text() == WORKFLOWS[CD]


def test_a_link_in_place_of_a_workflow_is_replaced_not_followed(
    project: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.yml"
    outside.write_text("keep me\n")
    (project / CD).unlink()
    (project / CD).symlink_to(outside)
    assert run("init", "--ci", "github", str(project)).returncode == 6
    assert run("init", "--ci", "github", str(project), "--force").returncode == 0
    assert outside.read_text() == "keep me\n"
    assert not (project / CD).is_symlink() and (project / CD).read_text() == WORKFLOWS[CD]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ci", "gitlab"], "--ci takes one of: github (not 'gitlab')"),
        (["--force"], "--force only applies with --ci"),
        (
            ["--ci", "github", "--admin", "root"],
            "--name, --admin and --config describe a workspace",
        ),
    ],
)
def test_init_refuses_options_that_do_not_fit(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = run("init", str(tmp_path / "p"), *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert (
        not (tmp_path / "p" / ".github").exists() and not (tmp_path / "p" / "aidlc.yaml").exists()
    )


# -- the scripts, run against a real workspace -------------------------------------------------------


class Runner:
    """Runs one step's script the way a GitHub runner does, in `project` (cwd)."""

    def __init__(
        self,
        project: Path,
        doc: dict[str, Any],
        secrets: dict[str, str],
        variables: dict[str, str] | None = None,
    ) -> None:
        self.project = project
        self.doc = doc
        self.secrets = secrets
        self.variables = variables or {}
        self.outputs: dict[str, dict[str, str]] = {}

    def resolve(self, value: Any, inputs: dict[str, str], env: dict[str, str]) -> str:
        def one(match: re.Match[str]) -> str:
            context, _, name = match.group(1).partition(".")
            if context == "secrets":
                return self.secrets[name]
            if context == "inputs":
                return inputs[name]
            if context == "vars":
                return self.variables[name]
            if context == "env":
                return env[name]
            if context == "steps":
                step, _, key = name.partition(".outputs.")
                return self.outputs[step][key]
            raise AssertionError(f"unexpected expression {match.group(0)}")

        return re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", one, str(value))

    def __call__(
        self, job: str, name: str, inputs: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        declared = (self.doc["on"].get("workflow_dispatch") or {}).get("inputs", {})
        inputs = {k: v["default"] for k, v in declared.items() if "default" in v} | (inputs or {})
        spec = self.doc["jobs"][job]
        (step,) = [s for s in spec["steps"] if s.get("name") == name]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIDLC_", "PROMETHEUS_"))}
        env.update(
            PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            AIDLC_TOKEN_FILE="/nonexistent/aidlc-token",
            GITHUB_RUN_ID="4242",
            GITHUB_ACTOR="octocat",
            GITHUB_OUTPUT=str(self.project / "github-output"),
            GITHUB_STEP_SUMMARY=str(self.project / "github-summary"),
        )
        for block in (self.doc.get("env", {}), spec.get("env", {}), step.get("env", {})):
            for key, value in block.items():
                env[key] = self.resolve(value, inputs, env)
        (self.project / "github-output").write_text("")
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=self.project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert "Traceback" not in done.stderr, done.stderr
        if "id" in step:
            lines = (self.project / "github-output").read_text().splitlines()
            self.outputs[step["id"]] = dict(line.split("=", 1) for line in lines)
        return done


@pytest.fixture
def linked(project: Path, served: Served) -> Path:  # noqa: F811 - the fixture imported above
    """The project's `aidlc` folder (the workflows' AIDLC_WORKSPACE) is the served workspace."""
    (project / "aidlc").symlink_to(served.root)
    return project


def production(served: Served, name: str = "bc") -> int:  # noqa: F811
    from aidlc.registry import versions

    with served.open("approver") as ws:
        return versions.resolve(ws, f"{name}@production").version


def deployments(served: Served) -> list[dict[str, Any]]:  # noqa: F811
    from aidlc.serve import rollout

    with served.open("approver") as ws:
        return [d.to_json() for d in rollout.deployments(ws, "bc")]


@pytest.mark.slow
def test_ci_scripts_validate_ingest_train_and_verify_a_signed_version(
    linked: Path,
    cd: dict,
    served: Served,  # noqa: F811
) -> None:
    from aidlc.demo import breast_cancer

    project = linked
    (project / "demo").mkdir()
    good, _ = breast_cancer.write_files(project / "demo")
    (project / "data").mkdir()
    shutil.copyfile(good, project / "data" / "churn.csv")
    (project / "contracts").mkdir()
    contract = breast_cancer.contract(breast_cancer.frame())
    (project / "contracts" / "churn.yaml").write_text(yaml.safe_dump(contract))
    (project / "train").mkdir()
    recipe = RECIPE.format(features="exclude: [patient_id]", seed=5)
    (project / "train" / "churn.yaml").write_text(recipe.replace("breast-cancer@", "churn@"))
    secrets = {
        "AIDLC_STEWARD_TOKEN": served.tokens["steward"],
        "AIDLC_TRAINER_TOKEN": served.tokens["trainer"],
    }
    step = Runner(project, load((project / CI).read_text()), secrets)
    validated = step("data", "Validate the data against its contract (dry run, stores nothing)")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    ingested = step("data", "Ingest it as a new dataset version")
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    trained = step("train", "Train, register and sign (exit 1 when a gate fails)")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert step.outputs["train"] == {"version": "bc@4"}
    verified = step("train", "Verify the signature of the new version")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    summary = (project / "github-summary").read_text()
    assert summary == "Registered and signed bc@4; roll it out with aidlc-cd.\n"


@pytest.mark.slow
def test_cd_scripts_shadow_canary_and_promote_a_version(
    linked: Path,
    cd: dict,
    served: Served,  # noqa: F811
) -> None:
    secrets = {
        "AIDLC_APPROVER_TOKEN": served.tokens["approver"],
        "AIDLC_PROMOTER_TOKEN": served.tokens["approver"],
        "AIDLC_SMOKE_TOKEN": served.tokens["inference"],
    }
    step = Runner(linked, cd, secrets, {"AIDLC_API_URL": "https://api.invalid"})
    bad = step("staging", "Check the version reference", {"version": "bc; rm -rf ~"})
    assert bad.returncode == 2 and "::error::version must be NAME@V" in bad.stdout
    inputs = {"version": "bc@2", "canary_percent": "10"}
    # staging: bc@2 is already approved to staging in the fixture; the approval step re-approves.
    staged = step("staging", "Verify the signature and approve to staging", inputs)
    assert staged.returncode == 0, staged.stdout + staged.stderr
    shadow = step("staging", "Shadow it behind production", inputs)
    assert shadow.returncode == 0, shadow.stdout + shadow.stderr
    assert (deployments(served)[0]["mode"], deployments(served)[0]["status"]) == (
        "shadow",
        "active",
    )
    smoke = step("smoke-test", "The shadow shows no breach; end it", inputs)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "shadow of bc@2: active" in smoke.stdout
    assert deployments(served)[0]["status"] == "stopped"
    # No canary yet: promotion refuses.
    early = step("promote", "The canary is still running without a breach", inputs)
    assert early.returncode == 1
    assert "::error::the canary of bc@2 is missing, not active: not promoting" in early.stdout
    canary = step("canary", "Start the canary", inputs)
    assert canary.returncode == 0, canary.stdout + canary.stderr
    latest = deployments(served)[0]
    assert (latest["mode"], latest["candidate"], latest["percent"], latest["status"]) == (
        "canary", 2, 10.0, "active",
    )  # fmt: skip
    assert latest["policy"]["promote_after"] == 10_000_000
    assert production(served) == 1
    checked = step("promote", "The canary is still running without a breach", inputs)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    promoted = step("promote", "Promote to production", inputs)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert production(served) == 2
    assert deployments(served)[0]["status"] == "stopped"
