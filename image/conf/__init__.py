"""Hydra configs for image experiments (eval.yaml; groups model/ and data/; tome/ is in tokenmerge.experiments.conf)."""
