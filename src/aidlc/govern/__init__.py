"""Governance: compliance reports, lineage, retention, erasure, threat model, posture, backups."""
