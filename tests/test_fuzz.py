"""Fuzzing what users type: recipe overrides and genomes are accepted when valid and refused cleanly otherwise.

"Cleanly" means the one documented exception (`RecipeError` for recipes, `ValueError`
for `space.genome`, `UsageError` for the command line's `--genome`/`--option`), never
another exception, and for the command line exit code 2 with one line. The
expected ranges are written out here, from the documentation, not read from the
code under test.
"""
import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lqsearch import cli, spaces
from lqsearch.cli.errors import UsageError
from lqsearch.cli.profile import parse_genome_arg, parse_options
from lqsearch.run import recipes

FUZZ = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

#: key -> (kind, low, high, low_open, high_open, nullable), as documented for recipes (docs: recipes.py, README).
NUMERIC_KEYS = {
    "search.lambda": ("float", 0, None, False, False, True),
    "search.mutation_rate": ("float", 0, 1, False, False, False),
    "search.max_flops": ("float", 0, None, True, False, True),
    "search.generations": ("int", 1, None, False, False, False),
    "search.max_trials": ("int", 1, None, False, False, True),
    "search.seed": ("int", 0, None, False, False, False),
    "data.seed": ("int", 0, None, False, False, False),
    "data.batch_size": ("int", 1, None, False, False, False),
    "data.search_fraction": ("float", 0, 1, True, True, True),
    "evaluation.epochs": ("int", 0, None, False, False, False),
    "final.top_n": ("int", 1, None, False, False, False),
    # null keeps the training preset's value (the quickstart's preset is "cpu": 2e-3)
    "evaluation.training.learning_rate": ("float", 0, None, True, False, 2e-3),
    "space_options.width_multiplier": ("float", 0, 64, True, False, False),
}

VGG = spaces.get("vgg_small", width_multiplier=0.125)
ALLOWED = [0.25, 0.5, 1.0, 2.0, 3.0, 4.0]


def yaml_number(value) -> str:
    """How a user writes a number in YAML (`.nan`, `.inf`, `1e-05`, `2e6`)."""
    if isinstance(value, float) and math.isnan(value):
        return ".nan"
    if isinstance(value, float) and math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return repr(value)


def is_valid(spec, value) -> bool:
    kind, low, high, low_open, high_open, _ = spec
    if kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
        return False
    if not math.isfinite(value):
        return False
    above = low is None or value > low or (value == low and not low_open)
    below = high is None or value < high or (value == high and not high_open)
    return above and below


def stored(recipe, key):
    node = recipe
    for part in key.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, {"lambda": "lam"}.get(part, part))
    return node


numbers = st.one_of(
    st.integers(min_value=-10**6, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 0.0, 1.0, 64.0, 64.5, 1e-300, -0.0, 2e6]),
)


@FUZZ
@given(key=st.sampled_from(sorted(NUMERIC_KEYS)), value=numbers)
def test_numeric_overrides_are_accepted_exactly_when_valid(key, value):
    spec = NUMERIC_KEYS[key]
    override = f"{key}={yaml_number(value)}"
    if is_valid(spec, value):
        recipe = recipes.load_recipe("quickstart", [override])
        assert stored(recipe, key) == value
    else:
        with pytest.raises(recipes.RecipeError):
            recipes.load_recipe("quickstart", [override])


@FUZZ
@given(key=st.sampled_from(sorted(NUMERIC_KEYS)))
def test_null_is_accepted_exactly_where_documented(key):
    nullable = NUMERIC_KEYS[key][-1]
    if nullable:
        expected = None if nullable is True else nullable
        assert stored(recipes.load_recipe("quickstart", [f"{key}=null"]), key) == expected
    else:
        with pytest.raises(recipes.RecipeError):
            recipes.load_recipe("quickstart", [f"{key}=null"])


keys = st.one_of(st.sampled_from(sorted(NUMERIC_KEYS) + ["dataset", "space", "publish.name", "search.baselines",
                                                        "evaluation.mode", "quantizer", "name"]),
                 st.text(min_size=1, max_size=20))


@FUZZ
@given(key=keys, raw=st.text(max_size=30))
def test_any_override_text_is_accepted_or_refused_with_a_recipe_error(key, raw):
    try:
        recipes.load_recipe("quickstart", [f"{key}={raw}"])
    except recipes.RecipeError as error:
        assert str(error).strip()


@FUZZ
@given(texts=st.lists(st.sampled_from(["search.seed=1", "search.seed=2", "data.seed=3", "search.lambda=1"]),
                      min_size=2, max_size=4))
def test_a_key_given_twice_is_refused(texts):
    keys_given = [text.split("=")[0] for text in texts]
    if len(set(keys_given)) < len(keys_given):
        with pytest.raises(recipes.RecipeError, match="given twice"):
            recipes.load_recipe("quickstart", texts)
    else:
        recipes.load_recipe("quickstart", texts)


genes = st.one_of(st.sampled_from(ALLOWED), st.integers(-5, 10), st.floats(allow_nan=True, allow_infinity=True),
                  st.booleans(), st.none(), st.text(max_size=3))


def genome_is_valid(values) -> bool:
    return len(values) == len(ALLOWED) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        and any(math.isclose(v, a) for a in ALLOWED) for v in values)


@FUZZ
@given(values=st.lists(genes, min_size=0, max_size=8))
def test_genomes_are_accepted_exactly_when_every_value_is_allowed(values):
    if genome_is_valid(values):
        genome = VGG.genome(values)
        assert list(genome.values()) == [next(a for a in ALLOWED if math.isclose(v, a)) for v in values]
        assert VGG.genome(genome) == genome  # the mapping form round-trips
    else:
        with pytest.raises(ValueError):
            VGG.genome(values)


@FUZZ
@given(values=st.lists(st.one_of(st.sampled_from(ALLOWED), st.floats(allow_nan=True, allow_infinity=True)),
                       min_size=1, max_size=7))
def test_genome_argument_text(values):
    text = ",".join(repr(v) for v in values)
    if genome_is_valid(values):
        assert list(parse_genome_arg(VGG, text).values()) == [next(a for a in ALLOWED if math.isclose(v, a))
                                                              for v in values]
    else:
        with pytest.raises(UsageError):
            parse_genome_arg(VGG, text)


@FUZZ
@given(value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 100)))
def test_uniform_genome_argument_needs_a_finite_positive_number(value):
    text = f"uniform:{value!r}"
    if math.isfinite(value) and value > 0:
        assert set(parse_genome_arg(VGG, text).values()) <= set(ALLOWED)
    else:
        with pytest.raises(UsageError):
            parse_genome_arg(VGG, text)


@FUZZ
@given(raw=st.text(max_size=20))
def test_genome_argument_never_raises_anything_else(raw):
    try:
        parse_genome_arg(VGG, raw)
    except UsageError as error:
        assert str(error).strip()


@FUZZ
@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_space_options_refuse_nan_and_infinity(value):
    if math.isfinite(value):
        assert parse_options([f"width_multiplier={yaml_number(value)}"]) == {"width_multiplier": value}
    else:
        with pytest.raises(UsageError, match="finite"):
            parse_options([f"width_multiplier={yaml_number(value)}"])


@FUZZ
@given(key=st.sampled_from(["search.lambda", "search.mutation_rate", "data.search_fraction"]),
       value=st.sampled_from([".nan", ".inf", "-.inf", "-1", "2", "x"]))
def test_the_command_line_refuses_with_exit_2_and_one_line(key, value, capsys):
    assume(not (key == "search.lambda" and value == "2"))
    assert cli.main(["recipe", "show", "quickstart", f"{key}={value}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and key in captured.err
    assert "Traceback" not in captured.err



@pytest.mark.parametrize("text, value", [("2e6", 2e6), ("2E6", 2e6), ("1.5e6", 1.5e6), ("2.0e+6", 2e6), ("+1e3", 1e3),
                                         ("1_000", 1000)])
def test_exponent_numbers_are_numbers_as_in_yaml_1_2(text, value):
    assert recipes.load_recipe("quickstart", [f"search.max_flops={text}"]).search.max_flops == value


def test_text_stays_text_and_an_integer_version_becomes_a_string():
    assert recipes.load_recipe("quickstart", ["description=2e6 FLOPs"]).description == "2e6 FLOPs"
    assert recipes.load_recipe("quickstart", ["publish.version=2"]).publish.version == "2"
    assert recipes.load_recipe("quickstart", ["dataset=npz:/data/x.npz"]).dataset == "npz:/data/x.npz"
