"""Weight-sharing supernets: train once, then evaluate any candidate without training.

    from lqsearch.supernet import Supernet
    supernet = Supernet(space, input_shape=(28, 28, 1), num_classes=10)
    supernet.train(dataset.seeded("search_train", 0), steps=2000, checkpoint_dir="runs/mine/supernet")
    supernet.evaluate(genome, dataset.search_val, recalibration_data=dataset.take_batches("search_train", 20))

Modules: `elastic` (layers whose widths and groups are set at run time),
`supernet` (the `Supernet`), `training` (random sub-genome training, resumable),
`recalibration` (BatchNorm recalibration, accuracy) and `rank_correlation` (Kendall's
tau between one-shot and stand-alone accuracy).

References:
    - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
      Evolution-based Searching. CVPR 2020, arXiv:2005.06305.
"""
from lqsearch.supernet.rank_correlation import measure_rank_correlation
from lqsearch.supernet.recalibration import BatchNormRecalibrator, accuracy, recalibrate_batchnorm
from lqsearch.supernet.supernet import Supernet

__all__ = ["Supernet", "measure_rank_correlation", "recalibrate_batchnorm", "BatchNormRecalibrator", "accuracy"]
