"""Genes and genomes: validation, paper order, uniform, HyperParameters mapping."""
import keras_tuner as kt
import pytest

import lqsearch.spaces
from lqsearch.genome import Gene, GeneSet


@pytest.fixture
def genes():
    return GeneSet([Gene("conv1", (0.25, 0.5, 1.0, 2.0)), Gene("groups", (1, 2, 4), kind="groups")])


def test_sequence_is_paper_order_and_values_are_plain(genes):
    genome = genes.genome([2, 4])
    assert genome == {"conv1": 2.0, "groups": 4}
    assert type(genome["conv1"]) is float and type(genome["groups"]) is int
    assert list(genome) == ["conv1", "groups"]


def test_mapping_is_accepted(genes):
    assert genes.genome({"groups": 2, "conv1": 0.5}) == {"conv1": 0.5, "groups": 2}


@pytest.mark.parametrize(
    "bad, message",
    [
        ([1], "has 1 values but this space has 2 genes"),
        ([1, 2, 4], "has 3 values"),
        ([3, 1], r"Gene 'conv1': value 3 is not allowed; allowed values are \[0.25, 0.5, 1.0, 2.0\]"),
        ({"conv1": 1, "group": 2}, r"Unknown gene name\(s\) \['group'\]"),
        ({"conv1": 1}, r"no value for gene\(s\) \['groups'\]"),
        ([1, True], "Gene 'groups'"),
        ("1,2", "sequence of 2 values or a mapping"),
    ],
)
def test_bad_genomes_name_the_problem(genes, bad, message):
    with pytest.raises(ValueError, match=message):
        genes.genome(bad)


def test_uniform_takes_nearest_valid_value(genes):
    assert genes.uniform(2) == {"conv1": 2.0, "groups": 2}
    assert genes.uniform(16) == {"conv1": 2.0, "groups": 4}
    assert genes.cheapest() == {"conv1": 0.25, "groups": 4}
    assert genes.costliest() == {"conv1": 2.0, "groups": 1}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "2", True, None])
def test_uniform_refuses_what_is_not_a_finite_number(genes, bad):
    with pytest.raises(ValueError, match="not a finite number"):
        genes.uniform(bad)


def test_hyperparameters_round_trip(genes):
    hp = genes.hyperparameters({"conv1": 0.5, "groups": 4})
    assert [p.name for p in hp.space] == ["conv1", "groups"]
    assert all(type(p).__name__ == "Choice" for p in hp.space)
    assert genes.from_hyperparameters(hp) == {"conv1": 0.5, "groups": 4}
    hp.Int("unrelated", 0, 3)
    assert genes.from_hyperparameters(hp.values) == {"conv1": 0.5, "groups": 4}


def test_declare_inside_a_build_function(genes):
    hp = kt.HyperParameters()
    assert genes.declare(hp) == {"conv1": 0.25, "groups": 1}  # Choice defaults to the first value


@pytest.mark.parametrize("name", lqsearch.spaces.list_spaces())
def test_every_space_maps_to_hyperparameters(name):
    space = lqsearch.spaces.get(name)
    genome = space.cheapest()
    assert space.genes.from_hyperparameters(space.genes.hyperparameters(genome)) == genome
