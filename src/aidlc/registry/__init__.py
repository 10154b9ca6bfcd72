"""The model registry: versions, safe formats, signatures, approval, cards and ML-BOMs."""
