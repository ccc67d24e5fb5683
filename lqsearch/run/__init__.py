"""One search end to end: recipes, the runner, final retraining and the report.

`lqsearch.run.recipes` validates YAML recipes; `lqsearch.run.runner.run_recipe`
runs one into a resumable run directory (search, final training, report,
publishing); `final` retrains genomes from scratch; `report` writes report.md
and the plots from `results.json`.
"""
