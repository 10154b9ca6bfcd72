"""Monitor tests reuse the served-models workspace of the serving tests."""

from tests.serve.conftest import client_for, records, served, served_template

__all__ = ["client_for", "records", "served", "served_template"]
