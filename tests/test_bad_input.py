"""Bad input as a new user types it: every case exits 2 with one line on stderr, no traceback, nothing written.

The table below is grouped by kind. Each case runs `lqsearch.cli.main` in-process
in a fresh workspace of broken things (`bad_input_workspace.make_workspace`),
with the workspace as the current directory and the default registry inside
it. The assertions: exit code 2, nothing on stdout, exactly one line on stderr
starting with `lqsearch: error:` and naming what the case expects (the key or
the file, and the fix), no traceback, and the listing of the workspace (every
path, its size, mode and mtime) the same before and after.

Cases marked `unprivileged` run as a user who cannot write `ro/` nor read
`recipes/unreadable.yaml` (as root the effective user becomes `nobody`).
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import tensorflow as tf
from bad_input_workspace import make_workspace, unprivileged

from lqsearch import cli
from lqsearch.run import recipes, runner, validation

RUN = ["recipe", "run", "quickstart", "--smoke", "--out", "{ws}/out"]
#: A recipe that validates up to the data: the quickstart shrunk to seconds, published nowhere.
NPZ = [*RUN, "publish.name=null", "dataset=npz:{ws}/data/{case}.npz"]
EXPORT = ["zoo", "export", "tiny", "--format", "tflite", "--registry", "{ws}/reg/good"]
PUBLISH = ["zoo", "publish", "{ws}/run", "--registry", "{ws}/newreg"]
UNPRIVILEGED = "unprivileged"
SLOW = "slow"  # builds models (the cheapest genome, the minimum image size): a few seconds

# (group, id, arguments, expected fragments of the one line, flags)
CASES = [
    # -- the command line itself ------------------------------------------------------------------------------
    ("argv", "no command", [], ["required: command", "--help"]),
    ("argv", "unknown command", ["frobnicate"], ["invalid choice: 'frobnicate'"]),
    ("argv", "run without recipe", ["recipe", "run"], ["required: recipe"]),
    ("argv", "unknown option", [*RUN, "--bogus"], ["unrecognized arguments: --bogus"]),
    ("argv", "publish without name", ["zoo", "publish", "{ws}/run"], ["--name"]),
    ("argv", "export without format", ["zoo", "export", "tiny"], ["--format"]),
    ("argv", "classes not an integer", ["profile", "vgg_small", "--num-classes", "ten"], ["invalid int value: 'ten'"]),
    ("argv", "empty --out", ["recipe", "run", "quickstart", "--out", ""], ["--out is empty"]),
    # -- the recipe: name, file, YAML ---------------------------------------------------------------------------
    ("recipe file", "unknown recipe", ["recipe", "run", "quickstrat"], ["Did you mean 'quickstart'?"]),
    ("recipe file", "missing file", ["recipe", "run", "{ws}/nope.yaml"], ["nope.yaml' does not exist"]),
    ("recipe file", "a folder", ["recipe", "show", "{ws}/recipes/folder.yaml"], ["folder.yaml' is a folder"]),
    ("recipe file", "unreadable", ["recipe", "run", "{ws}/recipes/unreadable.yaml"], ["cannot be read", "chmod"],
     UNPRIVILEGED),
    ("recipe file", "not UTF-8", ["recipe", "run", "{ws}/recipes/latin1.yaml"],
     ["is not UTF-8", "byte 0xe9 on line 1"]),
    ("recipe file", "YAML syntax", ["recipe", "run", "{ws}/recipes/syntax.yaml"], ["not valid YAML at line 4, column"]),
    ("recipe file", "tab indentation", ["recipe", "show", "{ws}/recipes/tab.yaml"], ["not valid YAML at line 3"]),
    ("recipe file", "duplicate key", ["recipe", "run", "{ws}/recipes/duplicate.yaml"],
     ["'seed' is given twice (first on line 3)", "line 4"]),
    ("recipe file", "two documents", ["recipe", "show", "{ws}/recipes/two_docs.yaml"], ["not valid YAML at line 2"]),
    ("recipe file", "a list", ["recipe", "run", "{ws}/recipes/list.yaml"], ["must be a YAML mapping", "got a list"]),
    ("recipe file", "empty", ["recipe", "run", "{ws}/recipes/empty.yaml"], ["has no 'space'; add it"]),
    ("recipe file", "unknown key", ["recipe", "run", "{ws}/recipes/unknown.yaml"],
     ["Unknown recipe key 'search_space'"]),
    # -- overrides: keys and types ------------------------------------------------------------------------------
    ("override", "misspelt key", [*RUN, "search.populaton_size=4"], ["Did you mean 'search.population_size'?"]),
    ("override", "lam for lambda", [*RUN, "search.lam=2"], ["Did you mean 'search.lambda'?"]),
    ("override", "given twice", [*RUN, "search.seed=1", "search.seed=2"], ["'search.seed' is given twice"]),
    ("override", "no value", ["recipe", "show", "quickstart", "search.seed"], ["is not key=value"]),
    ("override", "no key", [*RUN, "=5"], ["is not key=value"]),
    ("override", "empty key part", [*RUN, "search.=5"], ["is not key=value with a dotted key"]),
    ("override", "under a number", [*RUN, "search.seed.x=1"], ["'seed' is not a group of settings"]),
    ("override", "YAML value", [*RUN, "search.baselines=[1"], ["not valid YAML at line 1"]),
    ("override", "integer as word", [*RUN, "search.population_size=many"], ["must be integer, got 'many'"]),
    ("override", "integer as float", [*RUN, "search.population_size=2.5"], ["must be integer, got 2.5"]),
    ("override", "integer as bool", [*RUN, "search.population_size=true"], ["must be integer, got True"]),
    ("override", "bool as word", [*RUN, "search.evaluate_baselines=maybe"], ["must be true/false"]),
    ("override", "mapping as number", [*RUN, "space_options=3"], ["'space_options' must be a mapping"]),
    ("override", "list as number", [*RUN, "search.baselines=3"], ["'search.baselines' must be a list"]),
    ("override", "group as string", [*RUN, "search=fast"], ["'search' must be a mapping of settings"]),
    ("override", "unknown mode", [*RUN, "evaluation.mode=fast"], ["one of scratch, inherit, oneshot"]),
    ("override", "unknown strategy", [*RUN, "strategy=tpu"], ["one of default, mirrored, multi_worker"]),
    ("override", "unknown preset", [*RUN, "evaluation.training.preset=fastest"], ["Unknown training preset"]),
    ("override", "unknown quantizer", [*RUN, "quantizer=dorefaa"], ["valid presets are"]),
    ("override", "unknown space", [*RUN, "space=vgg"], ["'space'", "Unknown search space 'vgg'"]),
    ("override", "unknown space option", [*RUN, "space_options.widht=2"], ["'space_options'", "valid options"]),
    ("override", "unknown dataset", [*RUN, "dataset=cifar11"], ["unknown dataset source 'cifar11'"]),
    ("override", "npz without path", [*RUN, "dataset=npz:"], ["'npz:' has no path", "npz:/path/to/data.npz"]),
    ("override", "baseline of wrong length", [*RUN, "search.baselines=[[1, 2]]"], ["does not fit space 'vgg_small'"]),
    # -- numbers ------------------------------------------------------------------------------------------------
    ("number", "lambda NaN", [*RUN, "search.lambda=.nan"],
     ["'search.lambda' must be a finite number", "e.g. search.lambda=4"]),
    ("number", "lambda infinity", [*RUN, "search.lambda=.inf"], ["'search.lambda' must be a finite number"]),
    ("number", "lambda negative", [*RUN, "search.lambda=-1"], ["'search.lambda' is out of range", ">= 0"]),
    ("number", "mutation rate NaN", [*RUN, "search.mutation_rate=.nan"], ["'search.mutation_rate' must be a finite"]),
    ("number", "mutation rate 2", [*RUN, "search.mutation_rate=2"], ["allowed values are in [0, 1]"]),
    ("number", "max_flops exponent negative", [*RUN, "search.max_flops=-2e6"],
     ["'search.max_flops' is out of range: -2000000.0"]),
    ("number", "max_flops zero", [*RUN, "search.max_flops=0"], ["'search.max_flops' is out of range", "> 0"]),
    ("number", "max_flops infinity", [*RUN, "search.max_flops=.inf"], ["'search.max_flops' must be a finite number"]),
    ("number", "width infinity", [*RUN, "space_options.width_multiplier=.inf"],
     ["space_options.width_multiplier must be a finite"]),
    ("number", "width NaN", [*RUN, "space_options.width_multiplier=.nan"],
     ["space_options.width_multiplier must be a finite"]),
    ("number", "width zero", [*RUN, "space_options.width_multiplier=0"],
     ["width_multiplier must be a finite number > 0"]),
    ("number", "width huge", [*RUN, "space_options.width_multiplier=1e9"], ["<= 64"]),
    ("number", "search fraction 0", [*RUN, "data.search_fraction=0"],
     ["'data.search_fraction' is out of range", "(0, 1)"]),
    ("number", "search fraction 1", [*RUN, "data.search_fraction=1"], ["'data.search_fraction' is out of range"]),
    ("number", "data seed negative", [*RUN, "data.seed=-1"], ["'data.seed' is out of range", "e.g. data.seed=0"]),
    ("number", "search seed negative", [*RUN, "search.seed=-3"], ["'search.seed' is out of range"]),
    ("number", "population 0", [*RUN, "search.population_size=0"], ["'search.population_size' is out of range"]),
    ("number", "max_trials 0", [*RUN, "search.max_trials=0"], ["'search.max_trials' is out of range"]),
    ("number", "batch size 0", [*RUN, "data.batch_size=0"], ["'data.batch_size' is out of range"]),
    ("number", "image size 0", [*RUN, "data.image_size=0"], ["'data.image_size' is out of range"]),
    ("number", "top_n 0", [*RUN, "final.top_n=0"], ["'final.top_n' is out of range"]),
    ("number", "learning rate negative", [*RUN, "evaluation.training.learning_rate=-0.1"],
     ["learning_rate' is out of range"]),
    ("number", "learning rate NaN", [*RUN, "final.training.learning_rate=.nan"], ["learning_rate' must be a finite"]),
    ("number", "baseline NaN", [*RUN, "search.baselines=[.nan]"], ["search.baselines must be a finite number"]),
    ("number", "baseline infinity", [*RUN, "search.baselines=[1, .inf]"], ["search.baselines must be a finite number"]),
    ("number", "baseline negative", [*RUN, "search.baselines=[-1]"], ["a uniform value must be a finite number > 0"]),
    # -- evolution settings (EvolutionSettings' checks, before the run) ------------------------------------------
    ("evolution", "one parent with crossovers", [*RUN, "search.num_parents=1"], ["crossover needs two parents"]),
    ("evolution", "more parents than population", [*RUN, "search.num_parents=5"], ["exceeds population_size=2"]),
    ("evolution", "no children", [*RUN, "search.num_crossovers=0", "search.num_mutations=0"], ["both 0"]),
    ("evolution", "max_flops below the cheapest genome", [*RUN, "search.max_flops=1000"],
     ["'search.max_flops' is 1000, below the", "cheapest genome", "Fix: e.g. search.max_flops="], SLOW),
    # -- publishing ---------------------------------------------------------------------------------------------
    ("publish", "name with a path", [*RUN, "publish.name=../evil"], ["'publish.name'", "Invalid model name '../evil'"]),
    ("publish", "name with a newline", [*RUN, 'publish.name="nl\\n"'], ["Invalid model name 'nl\\n'"]),
    ("publish", "empty name", [*RUN, 'publish.name=""'], ["Invalid model name ''"]),
    ("publish", "version with a slash", [*RUN, "publish.version=a/b"], ["Invalid model version 'a/b'"]),
    ("publish", "registry is a file", [*RUN, "publish.registry={ws}/afile"], ["afile is a file, not a folder"]),
    ("publish", "registry under a file", [*RUN, "publish.registry={ws}/afile/reg"],
     ["lies under", "afile, which is a file"]),
    ("publish", "registry read-only", [*RUN[:-1], "{ws}/open/out", "publish.registry={ws}/ro/reg"],
     ["The registry {ws}/ro/reg cannot be created", "{ws}/ro is read-only"], UNPRIVILEGED),
    ("publish", "registry over http", [*RUN, "publish.registry=http://127.0.0.1:9/reg"],
     ["http(s) registries are read-only"]),
    ("publish", "registry empty", [*RUN, 'publish.registry=""'], ["registry path is empty"]),
    ("publish", "registry index without models", [*RUN, "publish.registry={ws}/reg/nomodels"],
     ["index.json: 'models' must be"]),
    ("publish", "version already published",
     [*RUN, "publish.name=tiny", "publish.version=1", "publish.registry={ws}/reg/good"],
     ["tiny version 1 is already published", "--version 2"]),
    # -- the run directory ----------------------------------------------------------------------------------------
    ("run dir", "out is a file", ["recipe", "run", "quickstart", "--out", "{ws}/afile"],
     ["afile is a file, not a folder"]),
    ("run dir", "out under a file", ["recipe", "run", "quickstart", "--out", "{ws}/afile/run"], ["lies under"]),
    ("run dir", "out in a read-only folder", ["recipe", "run", "quickstart", "--out", "{ws}/ro/run"],
     ["The run directory {ws}/ro/run cannot be created: {ws}/ro is read-only"], UNPRIVILEGED),
    ("run dir", "out is read-only", ["recipe", "run", "quickstart", "--out", "{ws}/ro"],
     ["The run directory {ws}/ro is read-only"], UNPRIVILEGED),
    ("run dir", "out not empty", ["recipe", "run", "quickstart", "--out", "{ws}/notempty"],
     ["is not empty and holds no recipe.yaml"]),
    ("run dir", "out of another recipe", ["recipe", "run", "quickstart", "--out", "{ws}/otherrun"],
     ["holds a run of a different recipe"]),
    # -- data -------------------------------------------------------------------------------------------------------
    ("data", "npz missing", [*RUN, "dataset=npz:{ws}/data/absent.npz"], ["absent.npz: npz file not found"]),
    *[("data", f"npz {case}", [*NPZ], [f"{case}.npz", fragment]) for case, fragment in (
        ("truncated", "not a readable .npz"), ("garbage", "not a readable .npz"), ("pickled", "not a readable .npz"),
        ("missing_key", "missing key(s) 'y_test'"), ("float_images", "expected uint8"),
        ("float_labels", "labels must be integers"), ("negative_label", "negative label -1"),
        ("test_label_out_of_range", "out of range 0..3"), ("stray_label", "go up to 1000000"),
        ("class_gap", "1 of them never occur (2)"), ("count_mismatch", "holds 39 labels"),
        ("two_channels", "has shape (40, 28, 28, 2)"), ("shape_mismatch", "image size"),
        ("bad_num_classes", "'num_classes' must be one integer >= 2"),
    )],
    ("data", "npz one class", [*NPZ], ["has 1 class", "at least 2"]),
    ("data", "npz too few for the split", [*NPZ], ["too small for this search split"]),
    ("data", "images too small for the space", [*NPZ], ["4x4 images, too small", "at least 8x8", "data.image_size=8"],
     SLOW),
    ("data", "fashion folder missing",
     [*RUN, "publish.name=null", "dataset=fashion_mnist_local", "data.data_dir={ws}/nowhere"],
     ["nowhere: Fashion-MNIST directory not found"]),
    ("data", "fashion file truncated",
     [*RUN, "publish.name=null", "dataset=fashion_mnist_local", "data.data_dir={ws}/data/fashion"],
     ["train-images-idx3-ubyte.gz", "truncated or corrupt"]),
    ("data", "tfds not prepared", [*RUN, "publish.name=null", "dataset=mnist", "data.data_dir={ws}/data/tfds_empty",
                                   "data.download=false"],
     ["'mnist' is not prepared", "data.data_dir=DIR", "dataset=embedded"]),
    # -- profile ------------------------------------------------------------------------------------------------------
    ("profile", "unknown space", ["profile", "vgg_smal"],
     ["Unknown search space 'vgg_smal'", "Did you mean 'vgg_small'"]),
    ("profile", "genome too short", ["profile", "vgg_small", "--genome", "0.5,2,1"],
     ["has 3 values but this space has 6 genes"]),
    ("profile", "genome value", ["profile", "vgg_small", "--genome", "0.5,2,1,1,1,7"], ["value 7 is not allowed"]),
    ("profile", "genome word", ["profile", "vgg_small", "--genome", "a,b"], ["'a' is not a number"]),
    ("profile", "genome empty item", ["profile", "vgg_small", "--genome", "0.5,,2,1,1,1"], ["has an empty value"]),
    ("profile", "genome infinity", ["profile", "vgg_small", "--genome", "0.5,inf,1,1,1,1"],
     ["'inf' is not a finite number"]),
    ("profile", "uniform negative", ["profile", "vgg_small", "--genome", "uniform:-5"],
     ["a uniform value must be > 0"]),
    ("profile", "uniform NaN", ["profile", "vgg_small", "--genome", "uniform:nan"], ["'nan' is not a finite number"]),
    ("profile", "uniform empty", ["profile", "vgg_small", "--genome", "uniform:"], ["is not a number"]),
    ("profile", "unknown quantizer", ["profile", "vgg_small", "--quantizer", "dorefaa"], ["valid presets are bireal"]),
    ("profile", "unknown option", ["profile", "vgg_small", "--option", "widht=2"], ["valid options are"]),
    ("profile", "option infinity", ["profile", "vgg_small", "--option", "width_multiplier=.inf"],
     ["must be a finite number"]),
    ("profile", "option twice",
     ["profile", "vgg_small", "--option", "width_multiplier=0.5", "--option", "width_multiplier=1"],
     ["--option width_multiplier is given twice"]),
    ("profile", "option without value", ["profile", "vgg_small", "--option", "width_multiplier"], ["is not key=value"]),
    ("profile", "option value", ["profile", "resnet18", "--option", "stem=huge"], ["stem must be"]),
    ("profile", "input shape of two", ["profile", "vgg_small", "--input-shape", "32,32"], ["three positive integers"]),
    ("profile", "input shape too small", ["profile", "vgg_small", "--input-shape", "4,4,3"],
     ["too small for search space 'vgg_small'", "at least 8x8", "--input-shape 8,8,3"], SLOW),
    ("profile", "one class", ["profile", "vgg_small", "--num-classes", "1"],
     ["--num-classes must be an integer >= 2, got 1"]),
    # -- the registry: list, show, export ----------------------------------------------------------------------------
    ("zoo", "list a file", ["zoo", "list", "--registry", "{ws}/afile"], ["afile is a file, not a folder"]),
    ("zoo", "list unreadable index", ["zoo", "list", "--registry", "{ws}/reg/notjson"],
     ["Cannot read the registry index", "index.json"]),
    ("zoo", "list NaN in the index", ["zoo", "list", "--registry", "{ws}/reg/nanflops"], ["NaN is not a JSON number"]),
    ("zoo", "list index without models", ["zoo", "list", "--registry", "{ws}/reg/nomodels"],
     ["index.json: 'models' must be"]),
    ("zoo", "list entry without space", ["zoo", "list", "--registry", "{ws}/reg/nospace"],
     ["models.tiny.1 has no 'space'"]),
    ("zoo", "list wrong format", ["zoo", "list", "--registry", "{ws}/reg/wrongformat"],
     ["not an lqsearch registry index"]),
    ("zoo", "list flops as text", ["zoo", "list", "--registry", "{ws}/reg/stringflops"],
     ["models.tiny.1.flops must be number"]),
    ("zoo", "list empty registry", ["zoo", "list", "--registry", ""], ["registry path is empty"]),
    ("zoo", "show entry without sha", ["zoo", "show", "tiny", "--registry", "{ws}/reg/nosha"],
     ["has no 'card_sha256'"]),
    ("zoo", "show card without metrics", ["zoo", "show", "tiny", "--registry", "{ws}/reg/nometrics"],
     ["tiny/1/card.json: the card has no 'metrics'"]),
    ("zoo", "show card without tflite", ["zoo", "show", "tiny", "--registry", "{ws}/reg/nofiles"],
     ["files has no 'tflite'"]),
    ("zoo", "show card with a path", ["zoo", "show", "tiny", "--registry", "{ws}/reg/badfilepath"],
     ["files.tflite.path must be file"]),
    ("zoo", "show tampered card", ["zoo", "show", "tiny", "--registry", "{ws}/reg/tampered"],
     ["Hash mismatch", "card.json"]),
    ("zoo", "show unknown name", ["zoo", "show", "tiyn", "--registry", "{ws}/reg/good"],
     ["No model 'tiyn'", "Did you mean 'tiny'"]),
    ("zoo", "show unknown version", ["zoo", "show", "tiny", "--version", "7", "--registry", "{ws}/reg/good"],
     ["no version '7'"]),
    ("zoo", "export unknown format", ["zoo", "export", "tiny", "--format", "onnx", "--registry", "{ws}/reg/good"],
     ["valid formats are tflite"]),
    ("zoo", "export to a folder", [*EXPORT, "--out", "{ws}/adir"], ["--out", "adir is a folder, not a file"]),
    ("zoo", "export under a file", [*EXPORT, "--out", "{ws}/afile/x.tflite"],
     ["its folder", "afile is a file, not a folder"]),
    ("zoo", "export read-only", [*EXPORT, "--out", "{ws}/ro/x.tflite"], ["its folder {ws}/ro is read-only"],
     UNPRIVILEGED),
    ("zoo", "export empty out", [*EXPORT, "--out", ""], ["--out is empty"]),
    ("zoo", "export tampered tflite", ["zoo", "export", "tiny", "--format", "tflite", "--out", "{ws}/x.tflite",
                                       "--registry", "{ws}/reg/tamperedtflite"], ["Hash mismatch", "model.tflite"]),
    ("zoo", "export card without metrics", ["zoo", "export", "tiny", "--format", "tflite", "--out", "{ws}/x.tflite",
                                            "--registry", "{ws}/reg/nometrics"], ["the card has no 'metrics'"]),
    # -- the registry: publish ---------------------------------------------------------------------------------------
    ("zoo publish", "not a model", ["zoo", "publish", "{ws}/empty", "--name", "x", "--registry", "{ws}/newreg"],
     ["neither a saved model"]),
    ("zoo publish", "name with a path", [*PUBLISH, "--name", "../evil"], ["Invalid model name '../evil'"]),
    ("zoo publish", "name with a newline", [*PUBLISH, "--name", "nl\n"], ["Invalid model name 'nl\\n'"]),
    ("zoo publish", "version with a slash", [*PUBLISH, "--name", "x", "--version", "a/b"], ["Invalid model version"]),
    ("zoo publish", "registry is a file", ["zoo", "publish", "{ws}/run", "--name", "x", "--registry", "{ws}/afile"],
     ["afile is a file, not a folder"]),
    ("zoo publish", "registry read-only", ["zoo", "publish", "{ws}/run", "--name", "x", "--registry", "{ws}/ro/reg"],
     ["The registry {ws}/ro/reg cannot be created: {ws}/ro is read-only"], UNPRIVILEGED),
    ("zoo publish", "registry over http",
     ["zoo", "publish", "{ws}/run", "--name", "x", "--registry", "http://127.0.0.1:9/r"],
     ["http(s) registries are read-only"]),
    ("zoo publish", "registry malformed",
     ["zoo", "publish", "{ws}/run", "--name", "x", "--registry", "{ws}/reg/nospace"],
     ["has no 'space'"]),
    ("zoo publish", "already published", ["zoo", "publish", "{ws}/run", "--name", "tiny", "--version", "1",
                                          "--registry", "{ws}/reg/good"], ["tiny version 1 is already published"]),
    ("zoo publish", "latency runs 0", [*PUBLISH, "--name", "x", "--latency-runs", "0"],
     ["--latency-runs must be at least 1"]),
    ("zoo publish", "malformed model card",
     ["zoo", "publish", "{ws}/badmodel", "--name", "x", "--registry", "{ws}/newreg"],
     ["badmodel/final/model.json does not describe a model", "'space' must be"]),
]
GROUPS = sorted({case[0] for case in CASES})


def _case_id(case):
    return f"{case[0]}: {case[1]}"


def snapshot(root: Path) -> dict:
    """Every path under `root` with its kind, size, mode and mtime."""
    entries = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        entries[str(path.relative_to(root))] = (path.is_dir(), info.st_size, info.st_mode, info.st_mtime_ns)
    return entries


@pytest.fixture(autouse=True)
def _fresh_keras_session(request):
    """Overrides conftest's: a refusal builds no model, and clear_session's garbage collection costs ~0.3 s a
    test here; only the cases that build models (marked slow) get a fresh session."""
    if request.node.get_closest_marker("slow") is None:
        yield
        return
    tf.keras.backend.clear_session()
    yield
    tf.keras.backend.clear_session()


@pytest.fixture(scope="module")
def shared_workspace():
    """The broken things, written once: a refusal writes nothing, so every case can share them (a case that
    wrote something would fail its own before/after comparison)."""
    root = Path(tempfile.mkdtemp(prefix="lqsearch-bad-input-"))
    cache = Path(tempfile.mkdtemp(prefix="lqsearch-bad-input-cache-"))
    root.chmod(0o755)  # world-traversable, for the unprivileged cases
    cache.chmod(0o777)
    make_workspace(root)
    yield root, cache
    (root / "ro").chmod(0o755)
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture
def workspace(shared_workspace, monkeypatch):
    """The workspace as the current directory, with the default registry inside it and the cache outside."""
    root, cache = shared_workspace
    monkeypatch.chdir(root)
    monkeypatch.setenv("LQSEARCH_REGISTRY", str(root / "default-registry"))
    monkeypatch.setenv("LQSEARCH_CACHE", str(cache))
    return root


def test_the_table_covers_every_kind_of_bad_input():
    assert len(CASES) >= 107
    assert {"argv", "recipe file", "override", "number", "evolution", "publish", "run dir", "data", "profile", "zoo",
            "zoo publish"} == set(GROUPS)
    assert len({_case_id(case) for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case",
                         [pytest.param(case, id=_case_id(case), marks=[pytest.mark.slow] if SLOW in case[4:] else [])
                                  for case in CASES])
def test_bad_input_is_refused_cleanly(case, workspace, capsys):
    group, name, arguments, fragments, *flags = case
    npz_case = {"npz one class": "one_class", "npz too few for the split": "too_few",
                "images too small for the space": "tiny_images"}.get(name, name.removeprefix("npz "))
    argv = [arg.replace("{ws}", str(workspace)).replace("{case}", npz_case) for arg in arguments]
    before = snapshot(workspace)
    if UNPRIVILEGED in flags:
        with unprivileged():
            code = cli.main(argv)
    else:
        code = cli.main(argv)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, captured.err
    assert captured.out == ""
    assert len(lines) == 1 and lines[0].startswith("lqsearch: error: "), captured.err
    assert "Traceback" not in captured.err
    for fragment in fragments:
        fragment = fragment.replace("{ws}", str(workspace))
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert snapshot(workspace) == before
    assert not (workspace / "out").exists() and not (workspace / "registry").exists()


@pytest.mark.slow
def test_after_a_refusal_the_fixed_command_is_not_another_recipe(workspace, capsys):
    """Nothing is left by a refusal, so the corrected command validates into the same --out."""
    out = workspace / "out"
    assert cli.main(["recipe", "run", "quickstart", "--smoke", "--out", str(out), "search.max_flops=1000"]) == 2
    assert not out.exists()
    fixed = recipes.load_recipe("quickstart", ["search.max_flops=2e6"], smoke=True)
    run = validation.validate(fixed, out, load_data=runner.load_data)
    assert run.resuming is False and run.cheapest_flops < 2e6 and not out.exists()
    capsys.readouterr()


def _fail_with(error):
    def fail():
        raise error
    return fail


def test_unexpected_errors_exit_1_with_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.setattr(recipes, "list_recipes", _fail_with(KeyError("a bug")))
    assert cli.main(["recipe", "list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: KeyError" in err and "--debug" in err and "Traceback" not in err
    assert cli.main(["recipe", "list", "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError: 'a bug'" in err


def test_a_plain_value_error_is_a_bug_not_bad_input(monkeypatch, capsys):
    """Only the classes in EXPECTED_ERRORS exit 2: a ValueError from deep inside is reported as a bug."""
    monkeypatch.setattr(recipes, "list_recipes", _fail_with(ValueError("deep inside")))
    assert cli.main(["recipe", "list"]) == 1
    assert "internal error: ValueError: deep inside" in capsys.readouterr().err


def test_os_errors_on_user_paths_are_one_line_with_the_path(monkeypatch, capsys):
    monkeypatch.setattr(recipes, "list_recipes", _fail_with(OSError(28, "No space left on device", "/r/results.json")))
    assert cli.main(["recipe", "list"]) == 2
    assert capsys.readouterr().err == ("lqsearch: error: /r/results.json: No space left on device. Fix: check that "
                                       "path, its permissions and the free disk space.\n")


def test_interrupt_exits_130_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr(recipes, "list_recipes", _fail_with(KeyboardInterrupt()))
    assert cli.main(["recipe", "list"]) == 130
    assert capsys.readouterr().err.count("\n") == 1


def test_the_workspace_really_is_read_only_for_the_unprivileged_cases(workspace):
    with unprivileged(), pytest.raises(PermissionError):
        (workspace / "ro" / "probe").mkdir()
    with unprivileged(), pytest.raises(PermissionError):
        (workspace / "recipes" / "unreadable.yaml").read_text()
    assert os.geteuid() == os.getuid()


SUBPROCESS_CASES = [
    (["recipe", "run", "quickstart", "--smoke", "--out", "{ws}/out", "data.seed=-1"], "'data.seed' is out of range"),
    (["recipe", "run", "quickstart", "--smoke", "--out", "{ws}/out", "publish.name=null",
      "dataset=npz:{ws}/data/stray_label.npz"],
     "go up to 1000000"),
    (["zoo", "show", "tiny", "--registry", "{ws}/reg/nometrics"], "the card has no 'metrics'"),
]


@pytest.mark.slow
@pytest.mark.parametrize("arguments, fragment", SUBPROCESS_CASES, ids=lambda value: str(value)[:40])
def test_the_console_command_prints_exactly_one_line(arguments, fragment, workspace):
    """The real process: whatever TensorFlow, Keras or absl might print, stderr is one line and stdout empty."""
    before = snapshot(workspace)
    result = subprocess.run([sys.executable, "-m", "lqsearch.cli",
                             *[a.replace("{ws}", str(workspace)) for a in arguments]],
                            cwd=workspace, capture_output=True, text=True, timeout=300,
                            env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("lqsearch: error: "), result.stderr
    assert fragment in result.stderr
    assert snapshot(workspace) == before
