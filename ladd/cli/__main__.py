"""`python -m ladd.cli` runs the command line (as `python -m ladd` does)."""

from ladd.cli import main

main()
