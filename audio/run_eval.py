"""Hydra entry point for audio evaluation (see audio/conf/eval.yaml).

python -m tokenmerge.audio.run_eval                                    # the embedded model and clips
python -m tokenmerge.audio.run_eval -m model=embedded,embedded_tome tome.r=4,8 tome.method=tome,random_drop
python -m tokenmerge.audio.run_eval experiment=paper_audioset_vit_base model.checkpoint=/w/as.pth \
    data.root=/as/eval.csv data.classes=/as/class_labels_indices.csv

Every setting (of every job, in a multirun) is checked before a model is built or a file is read; a mistake
ends with one line ``error: ...`` and exit status 2 (``HYDRA_FULL_ERROR=1`` shows the traceback).
"""

import hydra
from omegaconf import DictConfig, OmegaConf

from tokenmerge.experiments.cli import user_errors
from tokenmerge.experiments.hydra_cli import job_paths

from .experiment import run_evaluation


@hydra.main(version_base=None, config_path="conf", config_name="eval")
@user_errors
def main(cfg: DictConfig) -> None:
    config = OmegaConf.to_container(cfg, resolve=True)
    out_dir, reference_cache = job_paths(config)
    run_evaluation(config, out_dir, reference_cache=reference_cache)


if __name__ == "__main__":
    main()
