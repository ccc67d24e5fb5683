"""Settings flow whole: a recipe is made of the library's own configs, validated once, passed on as objects."""
import ast
from pathlib import Path

import pytest

import lqsearch
from lqsearch import training
from lqsearch.config import Config
from lqsearch.data import DataConfig
from lqsearch.errors import ConfigError, LqsearchError
from lqsearch.run import recipes, runner
from lqsearch.search.evaluation import EvaluationConfig
from lqsearch.search.settings import EvolutionSettings, SearchSettings

REPO = Path(__file__).resolve().parents[1]


def test_a_recipe_is_made_of_the_library_configs():
    recipe = recipes.load_recipe("vgg_small_cifar10_width")
    assert isinstance(recipe.data, DataConfig)
    assert isinstance(recipe.evaluation, EvaluationConfig)
    assert isinstance(recipe.evaluation.training, training.TrainingConfig)
    assert isinstance(recipe.search, SearchSettings) and isinstance(recipe.search, EvolutionSettings)
    assert type(recipe.search.settings()) is SearchSettings
    assert recipe.evaluation.training.preset == "shen_cifar"


@pytest.mark.slow
def test_a_config_field_is_a_recipe_key_that_reaches_the_oracle(tmp_path):
    """`search.max_sampling_attempts` was not settable from a recipe; as a field of EvolutionSettings it is,
    with no code of its own: the recipe's section is passed whole to the tuner and on to the oracle."""
    recipe = recipes.load_recipe("quickstart", ["search.max_sampling_attempts=7", "evaluation.epochs=3"], smoke=True)
    dataset = runner.load_data(recipe)
    space = lqsearch.spaces.get(recipe.space, **recipe.space_options)
    tuner = runner.build_tuner(recipe, space, dataset, tmp_path)
    assert tuner.oracle.settings.max_sampling_attempts == 7
    assert tuner.evaluation is recipe.evaluation  # whole, not copied field by field
    assert tuner.settings == recipe.search.settings()
    assert tuner.quantizer == (recipe.quantizer or space.default_quantizer)


@pytest.mark.parametrize("override, message", [
    ("search.populaton_size=4", "Unknown recipe key 'search.populaton_size'. Did you mean 'search.population_size'? "
                                "Valid keys here: population_size, num_parents, num_crossovers, num_mutations, "
                                "mutation_rate, max_sampling_attempts, schedule, selection, objectives, generations, "
                                "max_trials, seed, lambda, cost_metric, max_flops, keep_candidates, baselines, "
                                "evaluate_baselines."),
    ("search.population_size=0", "Recipe key 'search.population_size' is out of range: 0; allowed values are >= 1. "
                                 "Fix: e.g. search.population_size=20."),
    ("search.lambda=.nan", "Recipe key 'search.lambda' must be a finite number, got nan; NaN and infinity are not "
                           "numbers here. Fix: e.g. search.lambda=4."),
    ("evaluation.training.learning_rate=-0.1", "Recipe key 'evaluation.training.learning_rate' is out of range: "
                                               "-0.1; allowed values are > 0. Fix: e.g. "
                                               "evaluation.training.learning_rate=0.002."),
    ("evaluation.mode=oneshoot", "Recipe key 'evaluation.mode' must be one of scratch, inherit, oneshot, got "
                                 "'oneshoot'. Did you mean 'oneshot'?"),
    ("data.image_size=0", "Recipe key 'data.image_size' is out of range: 0; allowed values are >= 1. "
                          "Fix: e.g. data.image_size=1."),
])
def test_recipe_errors_name_the_dotted_key_the_allowed_values_and_a_fix(override, message):
    with pytest.raises(recipes.RecipeError) as error:
        recipes.load_recipe("quickstart", [override])
    assert str(error.value) == message


@pytest.mark.parametrize("build, message", [
    (lambda: training.TrainingConfig(epochs=-1),
     "TrainingConfig setting 'epochs' is out of range: -1; allowed values are >= 0. Fix: e.g. epochs=2."),
    (lambda: EvaluationConfig(mode="fast"),
     "EvaluationConfig setting 'mode' must be one of scratch, inherit, oneshot, got 'fast'."),
    (lambda: SearchSettings(populaton_size=3),
     "Unknown SearchSettings setting 'populaton_size'. Did you mean 'population_size'? Valid keys here: "
     "population_size, num_parents, num_crossovers, num_mutations, mutation_rate, max_sampling_attempts, schedule, "
     "selection, objectives, generations, max_trials, seed, lambda, cost_metric, max_flops, keep_candidates."),
    (lambda: DataConfig(batch_size=True), "DataConfig setting 'batch_size' must be integer, got True."),
    (lambda: training.PRESETS["cpu"].replace(learning_rate=float("inf")),
     "TrainingConfig setting 'learning_rate' must be a finite number, got inf; NaN and infinity are not numbers "
     "here. Fix: e.g. learning_rate=0.002."),
])
def test_library_configs_refuse_bad_values_with_one_line(build, message):
    with pytest.raises(ConfigError) as error:
        build()
    assert str(error.value) == message and isinstance(error.value, LqsearchError)


def test_configs_are_frozen_and_replace_validates():
    config = training.preset("shen_cifar", epochs=200)
    with pytest.raises(Exception):  # noqa: B017 (pydantic's frozen-instance error)
        config.epochs = 4
    assert config.replace(epochs=190).epochs == 190 and config.replace(epochs=190).milestones == (60, 120, 180)
    with pytest.raises(ConfigError):
        config.replace(epochs=-5)


def test_a_null_training_key_keeps_the_presets_value():
    section = {"preset": "phan_imagenet", "batch_size": None, "epochs": 3}
    config = training.TrainingConfig.parse(section, label="Recipe key")
    assert (config.batch_size, config.epochs, config.learning_rate) == (512, 3, 1e-3)


def test_every_settings_class_is_a_config():
    for cls in (DataConfig, EvaluationConfig, EvolutionSettings, SearchSettings, training.TrainingConfig,
                recipes.Recipe, recipes.FinalSettings, recipes.PublishSettings):
        assert issubclass(cls, Config), cls


#: Keras Tuner- and Keras-style signatures keep their many keyword arguments (they are what users know).
KERAS_STYLE = {"EvolutionaryOracle", "ElasticConv2D", "ElasticDense", "ElasticBatchNormalization"}


def test_no_public_constructor_takes_more_than_ten_parameters():
    """Settings objects (Config subclasses) are the place for many fields; constructors take them whole."""
    too_many = []
    for path in sorted((REPO / "lqsearch").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_") or node.name in KERAS_STYLE:
                continue
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    arguments = item.args
                    count = len(arguments.args) - 1 + len(arguments.kwonlyargs)
                    if count > 10:
                        too_many.append(f"{path.relative_to(REPO)}:{node.name} ({count})")
    assert not too_many
