"""Hydra entry point for video evaluation (see video/conf/eval.yaml).

python -m tokenmerge.video.run_eval                                   # the embedded model and clips
python -m tokenmerge.video.run_eval -m tome.r=16,32 tome.merge_scope=spacetime,frame tome.method=tome,random_drop
python -m tokenmerge.video.run_eval experiment=paper_k400_vit_large model.checkpoint=/w/vitl.pth data.root=/k400/val.csv

Every setting (of every job, in a multirun) is checked before a model is built or a video is decoded; a mistake
ends with one line ``error: ...`` and exit status 2 (``HYDRA_FULL_ERROR=1`` shows the traceback).
"""

from tokenmerge.experiments.hydra_cli import evaluation_main

from .experiment import run_evaluation

main = evaluation_main("tokenmerge.video.conf", run_evaluation)

if __name__ == "__main__":
    main()
