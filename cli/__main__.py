"""`python -m cli ...`: the same as the `zerotouch` console script."""

from cli.main import run

run()
