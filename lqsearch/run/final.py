"""Final retraining: the best genome(s), from scratch, on the full train set, scored on test.

Training checkpoints every epoch (Keras `BackupAndRestore`), so a killed run
resumes at the last finished epoch, with the batches the uninterrupted run had there.
The seed s fixes the initialisation (`set_random_seed(s)`) and the order and augmentation
of every epoch (`dataset.seeded("train", s)`), the same for every genome: the study's
rows are paired, row A and row B see the same batches under the same seed. The result is an `lqsearch.artifact`
directory: `weights.h5` + `model.json` (space, genome, quantizer, shapes,
test top-1 / top-5, cost), enough to rebuild the model.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

import tensorflow as tf

from lqsearch import cost, training
from lqsearch.deploy import artifact

__all__ = ["retrain"]


def retrain(
    space,
    genome: Mapping[str, Any],
    dataset,
    config: training.TrainingConfig,
    *,
    quantizer: str,
    out_dir,
    verbose: int = 0,
    strategy: Optional[tf.distribute.Strategy] = None,
    extra: Optional[Dict[str, Any]] = None,
    seed: int = 0,
    callbacks: Sequence[tf.keras.callbacks.Callback] = (),
) -> artifact.ModelCard:
    """Retrains `genome` from scratch on `dataset.train` and evaluates it on `dataset.test`.

    Arguments:
        space: the `SearchSpace`.
        genome: the genome to retrain.
        dataset: an `lqsearch.data.Dataset`.
        config: the final `TrainingConfig` (paper schedule or CPU-sized).
        quantizer: the preset name.
        out_dir: the artifact directory to write. If it already holds this
            genome's finished model, that model's card is returned unchanged.
        verbose: Keras progress output.
        strategy: a `tf.distribute.Strategy` (default: the current one).
        extra: more entries for the card's `extra` field.
        seed: the training seed: the initialisation and each epoch's batches come from it
            (whatever the genome: seeds are paired across genomes), so the result does not
            depend on what ran before, and a resumed training equals an uninterrupted one.
        callbacks: more Keras callbacks (e.g. progress lines).

    Returns:
        The saved model's `ModelCard` (metrics: test_accuracy, test_top5, cost).
    """
    out_dir = Path(out_dir)
    genome = space.genome(genome)
    if (out_dir / artifact.CARD_FILE).exists():
        card = artifact.load_card(out_dir)
        if card.genome == genome and "test_accuracy" in card.metrics:
            return card
    strategy = strategy or tf.distribute.get_strategy()
    tf.keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = training.build_model(config, lambda: space.build(
            genome, input_shape=dataset.input_shape, num_classes=dataset.num_classes, quantizer=quantizer))
    backup_dir = out_dir.parent / f".{out_dir.name}.backup"
    training.fit(
        model,
        dataset.seeded("train", seed, config.batch_size),
        config,
        num_classes=dataset.num_classes,
        log_dir=out_dir.parent / "logs" / out_dir.name,
        verbose=verbose,
        callbacks=callbacks,
        backup_dir=backup_dir,
    )
    scores = training.evaluate(model, dataset.scoring_pass("test"), num_classes=dataset.num_classes)
    model_cost = cost.profile(model)
    metrics = {
        "test_accuracy": scores["accuracy"],
        "test_top5": scores.get("top5"),
        **model_cost.as_dict(),
    }
    card = artifact.ModelCard(
        space=space.get_config(), genome=genome, quantizer=quantizer,
        input_shape=tuple(dataset.input_shape), num_classes=dataset.num_classes,
        metrics=metrics, dataset=dataset.name, extra=dict(extra or {}, epochs=config.epochs, seed=seed),
    )
    artifact.save(out_dir, model, card)
    shutil.rmtree(backup_dir, ignore_errors=True)
    return card
