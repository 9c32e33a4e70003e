"""Hydra configs for audio experiments: eval.yaml; groups model/, data/, experiment/ (tome/ is in core.conf)."""
