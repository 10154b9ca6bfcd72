"""Training: configuration, preprocessing, estimators, tuning, runs and the runner."""
