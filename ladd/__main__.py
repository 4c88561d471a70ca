"""`python -m ladd` runs the command line."""

from ladd.cli import main

main()
