"""The core layer: workspace, configuration, crypto, keys, object store, metadata, audit, auth.

It knows nothing of machine learning; every lifecycle stage stands on it.
"""
