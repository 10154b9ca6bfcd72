"""CI/CD templates for projects that use aidlc: `aidlc init --ci github` writes them."""

from aidlc.cicd.github import WORKFLOWS, write_workflows

__all__ = ["WORKFLOWS", "write_workflows"]
