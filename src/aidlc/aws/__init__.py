"""AWS entry points: Lambda handlers that call the same service functions as the CLI."""
