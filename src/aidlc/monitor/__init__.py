"""Monitoring: drift, data quality and performance of served models, alerts and retraining."""
