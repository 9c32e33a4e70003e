"""Hydra entry point for video evaluation (see video/conf/eval.yaml).

python -m tokenmerge.video.run_eval                                   # the embedded model and clips
python -m tokenmerge.video.run_eval -m tome.r=16,32 tome.merge_scope=spacetime,frame tome.method=tome,random_drop
python -m tokenmerge.video.run_eval experiment=paper_k400_vit_large model.checkpoint=/w/vitl.pth data.root=/k400/val.csv

Every setting (of every job, in a multirun) is checked before a model is built or a video is decoded; a mistake
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
