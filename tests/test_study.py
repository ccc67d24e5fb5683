"""The study's rows: iso-cost uniform rows (one width multiplier; bracketing groups), seeds, FLOPs to the winner."""
import hashlib
import io
import json
import types

import pytest

import lqsearch.spaces
from lqsearch.run import study
from lqsearch.run.progress import Progress
from lqsearch.spaces.vgg_small import VGG_AUTO_A, VGG_SMALL_LAYERS

SHAPE = dict(input_shape=(32, 32, 3), num_classes=10)


def _flops(space, entry, quantizer="bireal", **shape):
    return study.entry_space(space, entry).cost(entry.genome, quantizer=quantizer, **(shape or SHAPE)).flops


def test_a_width_space_gets_one_uniform_multiplier_at_the_searched_flops():
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.25)
    searched = [{"genome": list(VGG_AUTO_A)}]
    plain = study.entries(space, searched=searched, baselines=[1, 2], quantizer="bireal")
    assert [row.label for row in plain] == ["Searched", "Uniform-1x", "Uniform-2x"]  # no shapes: no FLOPs to match
    rows = study.entries(space, searched=searched, baselines=[1, 2], quantizer="bireal", **SHAPE)
    assert [row.label for row in rows] == ["Searched", "Uniform-1x", "Uniform-2x", study.ISO_COST_LABEL]
    iso = rows[-1]
    assert iso.kind == "uniform" and iso.genome == space.uniform(1) and iso.multiplier not in (0.25, 0.5, 1, 2, 3,
                                                                                               4)  # off the grid
    assert _flops(space, iso) / _flops(space, rows[0]) == pytest.approx(1.0, abs=study.ISO_COST_TOLERANCE)
    assert len(f"{iso.multiplier:g}".replace(".", "").lstrip("0")) <= 3  # a short decimal, not a bisection float
    widths = [filters for filters, _ in study.entry_space(space, iso).conv_configs(iso.genome, **SHAPE).values()]
    assert widths[:6] == [max(1, round(base * 0.25 * iso.multiplier)) for base, _ in VGG_SMALL_LAYERS]
    assert study.entry_space(space, rows[1]) is space


@pytest.mark.parametrize("genome", [[0.25, 0.5, 1, 2, 3, 4], [4, 4, 3, 4, 4, 2], [1, 0.5, 0.5, 1, 2, 0.25]])
def test_the_iso_cost_multiplier_is_within_two_percent_at_paper_width(genome):
    space = lqsearch.spaces.get("vgg_small")
    rows = study.entries(space, searched=[{"genome": genome}], baselines=[], quantizer="dorefa", **SHAPE)
    assert _flops(space, rows[-1], "dorefa") / _flops(space, rows[0], "dorefa") == pytest.approx(1.0, abs=0.02)


def test_a_group_space_gets_the_uniform_counts_that_bracket_the_searched_flops():
    space = lqsearch.spaces.get("mobilenet_m1", width_multiplier=0.25)
    shape = dict(input_shape=(64, 64, 3), num_classes=10)
    winner = {gene.name: gene.values[len(gene.values) // 2] for gene in space.genes}
    rows = study.entries(space, searched=[{"genome": winner}], baselines=[1], quantizer="bireal", **shape)
    target = _flops(space, rows[0], **shape)
    assert [row.label for row in rows] == ["Searched", "Uniform groups=1",
                                           "Uniform groups=16 (nearest at or below the searched FLOPs)",
                                           "Uniform groups=8 (nearest above the searched FLOPs)"]
    below, above = (_flops(space, row, **shape) for row in rows[2:])
    assert below <= target < above
    every = {json.dumps(space.uniform(v), sort_keys=True) for gene in space.genes for v in gene.values}
    others = [space.cost(json.loads(g), quantizer="bireal", **shape).flops for g in every]
    assert not [f for f in others if below < f <= target or target < f < above]  # nothing nearer on either side
    capped = study.entries(space, searched=[{"genome": winner}], baselines=[16], quantizer="bireal",
                           max_flops=above * 0.999, **shape)
    assert [row.label for row in capped] == ["Searched", "Uniform groups=16"]  # below is a baseline; above > ceiling


def test_train_study_trains_the_iso_row_in_its_scaled_space_and_adds_seeds_and_flops_to_the_winner(tmp_path,
                                                                                                  monkeypatch):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.25)
    rows = study.entries(space, searched=[{"genome": list(VGG_AUTO_A)}], baselines=[1], quantizer="dorefa", **SHAPE)
    trained = []

    def fake_retrain(built_by, genome, dataset, config, *, quantizer, out_dir, seed, **_):
        trained.append((built_by.options["width_multiplier"], out_dir.name))
        flops = built_by.cost(genome, quantizer=quantizer, **SHAPE)
        metrics = {"test_accuracy": 80.0 + seed + len(trained) / 10, **flops.as_dict()}
        return types.SimpleNamespace(metrics=metrics)

    monkeypatch.setattr(study, "retrain", fake_retrain)
    dataset = types.SimpleNamespace(num_classes=10, input_shape=(32, 32, 3))
    table = study.train_study(rows, space=space, dataset=dataset, config=types.SimpleNamespace(epochs=2),
                              seeds=[7, 8], out_dir=tmp_path, progress=Progress(1, 1, stream=io.StringIO()))
    assert [row["label"] for row in table] == ["Searched", "Uniform-1x", study.ISO_COST_LABEL]
    assert all(row["seeds"] == [7, 8] for row in table)
    assert table[0]["flops_ratio_to_winner"] == 1.0
    assert table[1]["flops_ratio_to_winner"] == pytest.approx(table[1]["flops"] / table[0]["flops"])
    assert table[2]["flops_ratio_to_winner"] == pytest.approx(1.0, abs=0.02)
    iso_multiplier = rows[2].multiplier
    assert table[2]["multiplier"] == iso_multiplier and "multiplier" not in table[1]
    assert [m for m, _ in trained] == [0.25, 0.25, 0.25, 0.25, 0.25 * iso_multiplier, 0.25 * iso_multiplier]
    assert len({name for _, name in trained}) == 6  # the iso row (uniform(1) genome) never reuses Uniform-1x's folder


def test_rows_of_the_runs_space_keep_their_training_folders():
    entry = study.StudyEntry("Uniform-1x", "uniform", {"conv1": 1.0}, "dorefa")
    before = json.dumps({"genome": entry.genome, "quantizer": "dorefa", "seed": 3, "epochs": 2}, sort_keys=True)
    assert study._key(entry, 3, 2) == f"{hashlib.sha256(before.encode()).hexdigest()[:12]}-seed3"
