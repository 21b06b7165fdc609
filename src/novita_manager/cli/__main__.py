"""`python -m novita_manager.cli …` runs the command line (tests and child processes use it)."""

from novita_manager.cli import main

main()
