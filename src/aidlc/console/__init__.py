"""The web console: pages over the workspace, served by `aidlc serve` at /console, acting as
the signed-in principal with the same role checks as the API and the CLI."""
