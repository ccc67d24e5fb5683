"""How candidates train: each recipe states a candidate schedule of its own, decaying over the candidate's epochs."""
import pytest
import tensorflow as tf

import lqsearch.spaces
from lqsearch import training
from lqsearch.config import ConfigError
from lqsearch.data import load_dataset
from lqsearch.run import recipes
from lqsearch.search.evaluation import make_evaluator

TINY = dict(steps_per_epoch=1, batch_size=16)  # one step per epoch: the schedule's shape, in seconds


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("embedded", batch_size=16, train_limit=200, test_limit=50, search_fraction=0.25, download=False)


def _learning_rates(model):
    """(the learning rate of the first step, of the last step) the model's optimizer used."""
    schedule = model.optimizer._learning_rate  # the schedule (or variable) Keras' optimizer was given
    last = int(model.optimizer.iterations.numpy()) - 1
    if isinstance(schedule, tf.keras.optimizers.schedules.LearningRateSchedule):
        return float(schedule(0)), float(schedule(last))
    return float(schedule.numpy()), float(schedule.numpy())


def _candidate(recipe_name, dataset, tmp_path, **evaluation_changes):
    """A tiny VGG-small candidate trained through the evaluator with the recipe's own candidate settings."""
    recipe = recipes.load_recipe(recipe_name)
    evaluation = recipe.evaluation
    evaluation = evaluation.replace(training=evaluation.training.replace(**TINY), **evaluation_changes)
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.125)
    bound = space.bind(input_shape=dataset.input_shape, num_classes=dataset.num_classes, quantizer="dorefa")
    evaluator = make_evaluator(bound, dataset, evaluation, run_dir=tmp_path, seed=1)
    evaluator.prepare()
    _, model = evaluator.evaluate(space.uniform(1))
    return recipe, model


@pytest.mark.slow
def test_a_paper_candidate_ends_its_training_below_the_initial_learning_rate(dataset, tmp_path):
    """Shen et al.'s CIFAR recipe: 10-epoch candidates. With the final preset's step milestones (60/120/180) they
    never decayed and trained at SGD lr 0.1 to the end; their own schedule decays over their 10 epochs."""
    recipe, model = _candidate("vgg_small_cifar10_width", dataset, tmp_path)
    assert int(model.optimizer.iterations.numpy()) == recipe.evaluation.epochs  # one step per epoch
    first, last = _learning_rates(model)
    initial = training.preset(recipe.evaluation.training.preset).learning_rate
    assert last < 0.1 * initial, f"the candidate's last step ran at lr {last}, the preset's initial lr is {initial}"
    assert first == pytest.approx(initial)


@pytest.mark.slow
def test_inherited_candidates_start_small_and_decay(dataset, tmp_path):
    """Shen et al.'s ImageNet recipe: candidates inherit the converged 4x weights, so they start at a small
    learning rate (not the 4x net's 0.1) and decay to near 0 over their own epochs."""
    recipe, model = _candidate("resnet18_imagenet_width", dataset, tmp_path, widest_epochs=1, widest_training=None)
    first, last = _learning_rates(model)
    assert first <= 0.01 and last < 0.1 * first
    assert recipe.evaluation.widest().schedule == "step"  # the 4x network keeps the paper's step schedule


def test_milestones_a_training_never_reaches_are_refused():
    with pytest.raises(ConfigError, match=r"milestones.*never reach.*Fix"):
        training.preset("shen_cifar", epochs=10)
    assert training.preset("shen_cifar", epochs=10, schedule="cosine").epochs == 10  # no milestones in use
    with pytest.raises(ConfigError, match=r"180"):
        training.preset("shen_cifar", epochs=150)  # 180 is never reached: refused too
    assert training.preset("shen_cifar", epochs=181).milestones == (60, 120, 180)


def test_a_recipe_whose_epochs_miss_the_milestones_is_refused_naming_the_key():
    with pytest.raises(recipes.RecipeError, match=r"'final'.*epochs=20.*milestones"):
        recipes.load_recipe("vgg_small_cifar10_width", ["final.epochs=20"])
    with pytest.raises(recipes.RecipeError, match=r"evaluation.*milestones"):
        recipes.load_recipe("vgg_small_cifar10_width", ["evaluation.training.schedule=step"])


@pytest.mark.parametrize("name", recipes.list_recipes())
def test_every_recipe_states_how_its_candidates_train(name):
    recipe = recipes.load_recipe(name)
    candidate = recipe.evaluation.config()
    assert candidate.schedule != "step" or max(candidate.milestones) < candidate.epochs
    recipes.load_recipe(name, smoke=True)  # the smoke preset shrinks epochs: it must still validate
