"""`python -m aidlc` runs the CLI."""

from aidlc.cli import main

main()
