"""GitHub Actions workflows for a project that trains and serves models with aidlc.

`aidlc-ci.yml` gates every change (tests, bandit, pip-audit, data validation) and, on the main
branch, ingests, trains, checks the signature and the compliance controls. `aidlc-cd.yml` rolls a
version out: staging, smoke test, canary, and promotion behind a required-approval environment.
The workflows are text, not built dicts, because their comments are half of their value.
"""

from __future__ import annotations

from pathlib import Path

from aidlc.errors import Conflict, UsageError

# Actions pinned by full commit SHA (a tag can be moved; a commit cannot), version in the comment.
CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683  # v4.2.2"
SETUP_PYTHON = "actions/setup-python@0b93645e9fea7318ecaed2b359559ac225c90a2b  # v5.3.0"
AWS_CREDENTIALS = (
    "aws-actions/configure-aws-credentials@e3dd6a429d7300a6a4c196c26e071d42e0343502  # v4.0.2"
)

# The steps every job starts with: the code, Python, and the locked dependencies.
_SETUP = """\
      - uses: @@CHECKOUT@@
        with:
          persist-credentials: false
      - uses: @@SETUP_PYTHON@@
        with:
          python-version: ${{ env.PYTHON_VERSION }}
      - name: Install the locked dependencies
        # requirements.lock pins aidlc[aws], your own dependencies and the CI tools (pytest,
        # bandit, pip-audit); generate it with hashes and add --require-hashes here.
        run: python -m pip install -r requirements.lock
"""

# Short-lived AWS credentials through OIDC: no access keys are stored in GitHub. The role's trust
# policy should name this repository (and, for the CD role, the environment).
_AWS = """\
      - uses: @@AWS_CREDENTIALS@@
        with:
          role-to-assume: ${{ secrets.AIDLC_AWS_ROLE_ARN }}
          aws-region: ${{ env.AWS_REGION }}
"""

_HEADER_ENV = """\
defaults:
  run:
    shell: bash

env:
  PYTHON_VERSION: "3.11"
  AWS_REGION: eu-west-1
  # The folder holding the project's aidlc.yaml for the AWS backends (`terraform output -raw
  # aidlc_yaml`): KMS, S3, and the database URL read from Secrets Manager (metadata.url_secret)
  # with the job's OIDC role, so no database password is stored in GitHub.
  AIDLC_WORKSPACE: aidlc
"""

CI_WORKFLOW = (
    """\
# aidlc CI, written by `aidlc init --ci github`.
# Every pull request and push to main: tests, bandit, pip-audit, data validation (dry run) and
# the compliance gate. A push to main also ingests the data, trains (the `register:` block of the
# training config registers a signed version) and verifies that signature.
# Jobs that open the workspace need the secrets below, so they skip pull requests from forks;
# they must also reach the metadata database (private RDS): set the repository variable
# AIDLC_RUNNER to a self-hosted runner label inside the VPC.
# Secrets: AIDLC_AWS_ROLE_ARN (the CI role to assume), and one token per aidlc principal:
# AIDLC_STEWARD_TOKEN (data-steward), AIDLC_TRAINER_TOKEN (trainer),
# AIDLC_AUDITOR_TOKEN (auditor). Each job gets only the token it needs.
name: aidlc-ci

on:
  pull_request:
  push:
    branches: [main]

# Least privilege: read the code, nothing else. Jobs that reach AWS add id-token: write.
permissions:
  contents: read

concurrency:
  group: aidlc-ci-${{ github.ref }}
  cancel-in-progress: true

"""
    + _HEADER_ENV
    + """\
  AIDLC_DATASET: churn
  AIDLC_DATA: data/churn.csv
  AIDLC_CONTRACT: contracts/churn.yaml
  AIDLC_TRAIN_CONFIG: train/churn.yaml

jobs:
  tests:
    runs-on: ubuntu-latest
    timeout-minutes: 30
    steps:
"""
    + _SETUP
    + """\
      - name: Tests
        run: python -m pytest -q

  security:
    runs-on: ubuntu-latest
    timeout-minutes: 15
    steps:
"""
    + _SETUP
    + """\
      - name: Static analysis (bandit)
        run: bandit -q -r src
      - name: Known vulnerabilities in the locked dependencies (pip-audit)
        run: pip-audit -r requirements.lock

  data:
    needs: [tests, security]
    if: >-
      github.event_name == 'push' ||
      github.event.pull_request.head.repo.full_name == github.repository
    runs-on: ${{ vars.AIDLC_RUNNER || 'ubuntu-latest' }}
    timeout-minutes: 30
    permissions:
      contents: read
      id-token: write
    env:
      AIDLC_TOKEN: ${{ secrets.AIDLC_STEWARD_TOKEN }}
    steps:
"""
    + _SETUP
    + _AWS
    + """\
      - name: Validate the data against its contract (dry run, stores nothing)
        run: aidlc data validate "$AIDLC_DATA" --contract "$AIDLC_CONTRACT"
      - name: Ingest it as a new dataset version
        if: github.event_name == 'push'
        run: aidlc data ingest "$AIDLC_DATA" --dataset "$AIDLC_DATASET" --contract "$AIDLC_CONTRACT"

  train:
    needs: data
    if: github.event_name == 'push'
    runs-on: ${{ vars.AIDLC_RUNNER || 'ubuntu-latest' }}
    timeout-minutes: 120
    permissions:
      contents: read
      id-token: write
    env:
      AIDLC_TOKEN: ${{ secrets.AIDLC_TRAINER_TOKEN }}
    outputs:
      version: ${{ steps.train.outputs.version }}
    steps:
"""
    + _SETUP
    + _AWS
    + """\
      - name: Train, register and sign (exit 1 when a gate fails)
        id: train
        run: |
          aidlc train "$AIDLC_TRAIN_CONFIG" --json > train.json
          read_version='import json, sys; print(json.load(sys.stdin)["model_version"] or "")'
          version="$(python -c "$read_version" < train.json)"
          if [ -z "$version" ]; then
            echo "::error::the training config has no register: block, so nothing was registered"
            exit 1
          fi
          echo "version=$version" >> "$GITHUB_OUTPUT"
      - name: Verify the signature of the new version
        env:
          MODEL_VERSION: ${{ steps.train.outputs.version }}
        run: |
          aidlc models verify "$MODEL_VERSION"
          echo "Registered and signed $MODEL_VERSION; roll it out with aidlc-cd." \\
            >> "$GITHUB_STEP_SUMMARY"

  compliance:
    needs: [tests, security]
    if: >-
      github.event_name == 'push' ||
      github.event.pull_request.head.repo.full_name == github.repository
    runs-on: ${{ vars.AIDLC_RUNNER || 'ubuntu-latest' }}
    timeout-minutes: 15
    permissions:
      contents: read
      id-token: write
    env:
      AIDLC_TOKEN: ${{ secrets.AIDLC_AUDITOR_TOKEN }}
    steps:
"""
    + _SETUP
    + _AWS
    + """\
      - name: Compliance controls (exit 1 when a control fails)
        run: aidlc compliance check --framework all
"""
)

CD_WORKFLOW = (
    """\
# aidlc CD, written by `aidlc init --ci github`. Run it by hand (Actions > aidlc-cd > Run
# workflow) with the NAME@V that aidlc-ci registered:
#   staging     approve the version to staging, then shadow it behind production (it sees a
#               copy of live traffic and answers nobody);
#   smoke-test  the API is ready, answers a real prediction, and the shadow shows no breach;
#   canary      send canary_percent of the traffic to it; a breach rolls it back at once;
#   promote     make it production, in the `production` environment.
# REQUIRED APPROVAL: in Settings > Environments > production add "Required reviewers" (and
# "Prevent self-review"), so promote waits for a person; a wait timer there gives the canary
# time to be judged. Put AIDLC_PROMOTER_TOKEN in that environment's secrets only, so no other
# job can read it. Restrict the staging and production environments to the main branch.
# Secrets: AIDLC_AWS_ROLE_ARN, AIDLC_APPROVER_TOKEN (an approver principal,
# environment staging), AIDLC_SMOKE_TOKEN (an inference principal), AIDLC_PROMOTER_TOKEN (an
# approver principal, environment production). Variables: AIDLC_API_URL (the HTTPS address of
# the API), AIDLC_RUNNER (a runner that reaches the metadata database).
name: aidlc-cd

on:
  workflow_dispatch:
    inputs:
      version:
        description: "Model version to roll out, NAME@V"
        required: true
        type: string
      canary_percent:
        description: "Share of traffic for the canary, in percent"
        required: true
        default: "10"
        type: string

permissions:
  contents: read

# One rollout at a time, and never cancel one half way.
concurrency:
  group: aidlc-cd
  cancel-in-progress: false

"""
    + _HEADER_ENV
    + """\
  # Inputs reach the shell through the environment only, never pasted into a script.
  MODEL_VERSION: ${{ inputs.version }}
  CANARY_PERCENT: ${{ inputs.canary_percent }}
  # A sample request body for the smoke test: {"records": [{...}]}.
  SMOKE_REQUEST: smoke/request.json

jobs:
  staging:
    runs-on: ${{ vars.AIDLC_RUNNER || 'ubuntu-latest' }}
    environment: staging
    timeout-minutes: 15
    permissions:
      contents: read
      id-token: write
    env:
      AIDLC_TOKEN: ${{ secrets.AIDLC_APPROVER_TOKEN }}
    steps:
"""
    + _SETUP
    + _AWS
    + """\
      - name: Check the version reference
        run: |
          if [[ ! "$MODEL_VERSION" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*@[0-9]+$ ]]; then
            echo "::error::version must be NAME@V, for example churn@4"
            exit 2
          fi
      - name: Verify the signature and approve to staging
        run: |
          aidlc models verify "$MODEL_VERSION"
          aidlc models approve "$MODEL_VERSION" --to staging \\
            --reason "aidlc-cd run $GITHUB_RUN_ID by $GITHUB_ACTOR"
      - name: Shadow it behind production
        run: |
          aidlc deploy "$MODEL_VERSION" --shadow --reason "staging: aidlc-cd run $GITHUB_RUN_ID"

  smoke-test:
    needs: staging
    runs-on: ${{ vars.AIDLC_RUNNER || 'ubuntu-latest' }}
    environment: staging
    timeout-minutes: 15
    permissions:
      contents: read
      id-token: write
    env:
      AIDLC_API_URL: ${{ vars.AIDLC_API_URL }}
      AIDLC_SMOKE_TOKEN: ${{ secrets.AIDLC_SMOKE_TOKEN }}
      AIDLC_TOKEN: ${{ secrets.AIDLC_APPROVER_TOKEN }}
    steps:
"""
    + _SETUP
    + _AWS
    + """\
      - name: The API is ready and answers a prediction
        # Python, not curl: the token stays in the environment, out of any command line.
        run: |
          python - <<'EOF'
          import json, os, sys, urllib.request
          base = os.environ["AIDLC_API_URL"].rstrip("/")
          if not base.startswith("https://"):
              sys.exit("AIDLC_API_URL must be an https:// address")
          name = os.environ["MODEL_VERSION"].split("@")[0]
          with urllib.request.urlopen(base + "/readyz", timeout=30) as r:
              ready = json.load(r)
          if name not in ready.get("models", []):
              sys.exit(f"the API does not serve {name}: {ready}")
          with open(os.environ["SMOKE_REQUEST"], "rb") as f:
              body = f.read()
          req = urllib.request.Request(
              f"{base}/v1/models/{name}:predict", data=body, method="POST",
              headers={"Authorization": "Bearer " + os.environ["AIDLC_SMOKE_TOKEN"],
                       "Content-Type": "application/json"})
          with urllib.request.urlopen(req, timeout=30) as r:
              answer = json.load(r)
          print(f"{name}@{answer['version']}: {len(answer['predictions'])} predictions")
          EOF
      - name: The shadow shows no breach; end it
        run: |
          name="${MODEL_VERSION%@*}"
          aidlc deploy status "$name" --json > deployments.json
          state="$(python - shadow <<'EOF'
          import json, os, sys
          version = int(os.environ["MODEL_VERSION"].rsplit("@", 1)[1])
          found = [d for d in json.load(open("deployments.json"))
                   if d["candidate"] == version and d["mode"] == sys.argv[1]]
          if not found:
              print("missing")
          elif (found[0]["verdict"] or {}).get("breaches"):
              print("breached")
          else:
              print(found[0]["status"])
          EOF
          )"
          echo "shadow of $MODEL_VERSION: $state"
          case "$state" in
            active) aidlc deploy stop "$name" --reason "smoke test passed: run $GITHUB_RUN_ID" ;;
            completed) ;;
            *) echo "::error::the shadow of $MODEL_VERSION did not pass: $state"; exit 1 ;;
          esac

  canary:
    needs: smoke-test
    runs-on: ${{ vars.AIDLC_RUNNER || 'ubuntu-latest' }}
    environment: staging
    timeout-minutes: 15
    permissions:
      contents: read
      id-token: write
    env:
      AIDLC_TOKEN: ${{ secrets.AIDLC_APPROVER_TOKEN }}
    steps:
"""
    + _SETUP
    + _AWS
    + """\
      - name: Start the canary
        # --promote-after at its maximum: the servers roll the canary back on a breach but never
        # promote it themselves; promotion is the reviewed job below.
        run: |
          aidlc deploy "$MODEL_VERSION" --canary "$CANARY_PERCENT" --promote-after 10000000 \\
            --reason "canary: aidlc-cd run $GITHUB_RUN_ID"

  promote:
    needs: canary
    runs-on: ${{ vars.AIDLC_RUNNER || 'ubuntu-latest' }}
    # The protected environment: the job waits here until a required reviewer approves.
    environment: production
    timeout-minutes: 15
    permissions:
      contents: read
      id-token: write
    env:
      AIDLC_TOKEN: ${{ secrets.AIDLC_PROMOTER_TOKEN }}
    steps:
"""
    + _SETUP
    + _AWS
    + """\
      - name: The canary is still running without a breach
        run: |
          aidlc deploy status "${MODEL_VERSION%@*}" --json > deployments.json
          state="$(python - canary <<'EOF'
          import json, os, sys
          version = int(os.environ["MODEL_VERSION"].rsplit("@", 1)[1])
          found = [d for d in json.load(open("deployments.json"))
                   if d["candidate"] == version and d["mode"] == sys.argv[1]]
          if not found:
              print("missing")
          elif (found[0]["verdict"] or {}).get("breaches"):
              print("breached")
          else:
              print(found[0]["status"])
          EOF
          )"
          if [ "$state" != "active" ]; then
            echo "::error::the canary of $MODEL_VERSION is $state, not active: not promoting"
            exit 1
          fi
      - name: Promote to production
        run: |
          aidlc deploy stop "${MODEL_VERSION%@*}" --reason "promoting: aidlc-cd run $GITHUB_RUN_ID"
          aidlc deploy "$MODEL_VERSION" \\
            --reason "promoted after review: aidlc-cd run $GITHUB_RUN_ID by $GITHUB_ACTOR"
"""
)


def _render(text: str) -> str:
    return (
        text.replace("@@CHECKOUT@@", CHECKOUT)
        .replace("@@SETUP_PYTHON@@", SETUP_PYTHON)
        .replace("@@AWS_CREDENTIALS@@", AWS_CREDENTIALS)
    )


# Paths relative to the project's root, and their contents.
WORKFLOWS: dict[str, str] = {
    ".github/workflows/aidlc-ci.yml": _render(CI_WORKFLOW),
    ".github/workflows/aidlc-cd.yml": _render(CD_WORKFLOW),
}


def write_workflows(directory: str | Path, *, force: bool = False) -> list[Path]:
    """Write the workflows under `directory`; refuse to replace any existing file unless `force`.

    Nothing is written when one file already exists, so a refusal leaves the project as it was.

    >>> import tempfile
    >>> [p.name for p in write_workflows(tempfile.mkdtemp())]
    ['aidlc-ci.yml', 'aidlc-cd.yml']
    """
    root = Path(directory).expanduser()
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} is not a directory")
    targets = {root / relative: text for relative, text in WORKFLOWS.items()}
    existing = [path for path in targets if path.exists() or path.is_symlink()]
    if existing and not force:
        raise Conflict(
            f"{', '.join(str(p) for p in existing)} already exist(s)",
            hint="pass --force to overwrite",
        )
    written = []
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            # Replace a link itself, never the file it points at.
            path.unlink()
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
