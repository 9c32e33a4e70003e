"""Hydra entry point for audio evaluation (see audio/conf/eval.yaml).

python -m tokenmerge.audio.run_eval                                    # the embedded model and clips
python -m tokenmerge.audio.run_eval -m model=embedded,embedded_tome tome.r=4,8 tome.method=tome,random_drop
python -m tokenmerge.audio.run_eval experiment=paper_audioset_vit_base model.checkpoint=/w/as.pth \
    data.root=/as/eval.csv data.classes=/as/class_labels_indices.csv

Every setting (of every job, in a multirun) is checked before a model is built or a file is read; a mistake
ends with one line ``error: ...`` and exit status 2 (``HYDRA_FULL_ERROR=1`` shows the traceback).
"""

from tokenmerge.experiments.hydra_cli import evaluation_main

from .experiment import run_evaluation

main = evaluation_main("tokenmerge.audio.conf", run_evaluation)

if __name__ == "__main__":
    main()
