"""Hydra config groups shared by every modality (tome/)."""
