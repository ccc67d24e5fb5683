"""`lqsearch recipe list | show NAME | plan NAME | run NAME_OR_PATH [key=value ...] [--out DIR] [--smoke]
[--workers N] | report RUN_DIR`."""
from __future__ import annotations

from pathlib import Path

from lqsearch import training
from lqsearch.cli.errors import UsageError
from lqsearch.run import recipes, workers
from lqsearch.run.plan import format_plan, plan_recipe
from lqsearch.run.runner import rebuild_report, run_recipe


def _cmd_list(args) -> int:
    for name in recipes.list_recipes():
        recipe = recipes.load_recipe(name)
        print(f"{name:32s} {recipe.description}")
    return 0


def _cmd_show(args) -> int:
    recipe = recipes.load_recipe(args.recipe, args.overrides, smoke=args.smoke)
    print(recipes.to_yaml(recipe), end="")
    return 0


def _cmd_plan(args) -> int:
    recipe = recipes.load_recipe(args.recipe, args.overrides, smoke=args.smoke)
    training.seed_everything(recipe.search.seed, recipe.deterministic)  # probe as the run would train
    print(format_plan(plan_recipe(recipe, probe=not args.no_probe)))
    return 0


def _cmd_run(args) -> int:
    recipe = recipes.load_recipe(args.recipe, args.overrides, smoke=args.smoke)
    if args.out is not None and not args.out.strip():
        raise UsageError("--out is empty; give a run directory, e.g. --out runs/mine (default runs/NAME).")
    out_dir = Path(args.out) if args.out is not None else Path("runs") / recipe.name
    verbose = 1 if args.verbose else 0
    if args.workers is None:
        run_recipe(recipe, out_dir, verbose=verbose)
        return 0
    if args.workers < 1:
        raise UsageError(f"--workers must be an integer >= 1, got {args.workers}; e.g. --workers 2 "
                         "(or leave it out to run the trials in this process).")
    command = ["-m", "lqsearch.cli", "recipe", "run", args.recipe, *args.overrides, "--out", str(out_dir),
               *(["--smoke"] if args.smoke else []), *(["--verbose"] if args.verbose else [])]
    port = workers.free_port()
    pool = workers.WorkerPool(command, args.workers, port)
    try:
        with workers.chief_environment(port):
            run_recipe(recipe, out_dir, verbose=verbose, pool=pool)
    finally:
        pool.stop()
    return 0


def _cmd_report(args) -> int:
    paths = rebuild_report(args.run_dir)
    print(f"Report: {paths['report']}")
    return 0


def add_commands(sub) -> None:
    """Registers `lqsearch recipe ...` on the main parser's subparsers."""
    recipe = sub.add_parser("recipe", help="list, show and run search recipes")
    commands = recipe.add_subparsers(dest="recipe_command", required=True)

    listing = commands.add_parser("list", help="the shipped recipes")
    listing.set_defaults(func=_cmd_list)

    for name, func, help_text in (("show", _cmd_show, "print the resolved recipe as YAML"),
                                  ("plan", _cmd_plan, "print what a run will do and cost (a projection; nothing runs)"),
                                  ("run", _cmd_run, "run or resume a recipe")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("recipe", help="a shipped recipe name or a path to a .yaml recipe")
        command.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. search.population_size=8")
        command.add_argument("--smoke", action="store_true",
                             help="shrink the recipe to a seconds-long run on the embedded sample")
        command.set_defaults(func=func)
        if name == "plan":
            command.add_argument("--no-probe", action="store_true",
                                 help="counts only: do not time steps on this device")
        if name == "run":
            command.add_argument("--out", help="run directory (default runs/NAME); the same --out resumes")
            command.add_argument("--verbose", action="store_true", help="show Keras training output")
            command.add_argument("--workers", type=int, help="run the trials in N local worker processes "
                                 "(Keras Tuner's chief/worker mode on 127.0.0.1); this process is the chief")

    report = commands.add_parser("report", help="rebuild report.md and the plots of a run from its results.json")
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of `lqsearch recipe run`")
    report.set_defaults(func=_cmd_report)
