"""`python -m lqsearch.cli ...` runs the `lqsearch` command line."""
import sys

from lqsearch.cli.main import main

sys.exit(main())
