"""Serving: the inference API, its request checks, rate limits, prediction logs and rollouts.

`aidlc.serve.app.create_app(Server(ws, config))` builds the ASGI app; `aidlc serve` runs it.
"""
