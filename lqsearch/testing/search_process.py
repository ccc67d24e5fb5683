"""One Keras Tuner process of a `BinaryArchitectureSearch` on the tiny grouped space, for distributed tests.

    KERASTUNER_TUNER_ID=tuner0 KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000 \\
        python -m lqsearch.testing.search_process --directory DIR --mode oneshot --max-trials 6

Prints `prepared: trained` or `prepared: loaded` when the evaluator's one-off work is done
(none in the chief, which runs no trial), then `search returned`.
"""
import argparse
import sys

from lqsearch.data import load_dataset
from lqsearch.search.evaluation import EvaluationConfig
from lqsearch.search.settings import SearchSettings
from lqsearch.search.tuner import BinaryArchitectureSearch, SearchCallback
from lqsearch.testing.tiny_spaces import TinyGroupedSpace


class _Report(SearchCallback):
    def on_prepare_end(self, preparation):
        print(f"prepared: {'trained' if preparation['trained'] else 'loaded'}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--directory", required=True)
    parser.add_argument("--mode", default="oneshot")
    parser.add_argument("--max-trials", type=int, default=6)
    parser.add_argument("--supernet-steps", type=int, default=30)
    args = parser.parse_args(argv)
    dataset = load_dataset("embedded", batch_size=32, train_limit=200, test_limit=40, search_fraction=0.3,
                           image_size=8, seed=0)
    evaluation = EvaluationConfig(mode=args.mode, epochs=1, supernet_steps=args.supernet_steps,
                                  recalibration_batches=2, widest_epochs=1)
    settings = SearchSettings(lam=None, max_trials=args.max_trials, population_size=2, num_parents=2,
                              num_crossovers=1, num_mutations=1, seed=3)
    tuner = BinaryArchitectureSearch(
        TinyGroupedSpace(), dataset, settings=settings, evaluation=evaluation, search_callbacks=[_Report()],
        directory=args.directory, project_name="search", overwrite=False,
    )
    tuner.search(verbose=0)
    print("search returned", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
