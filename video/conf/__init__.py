"""Hydra configs for video experiments: eval.yaml; groups model/, data/, experiment/ (tome/ is in core.conf)."""
