"""The data quality gate: contracts, validation, profiles, ingest, quarantine and dataset versions.

Nothing reaches training unless it passed the gate; nothing that fails is lost.
"""
