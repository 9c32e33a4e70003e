"""Hydra configs for image experiments (eval.yaml; groups model/ and data/; tome/ comes from tokenmerge.core.conf)."""
