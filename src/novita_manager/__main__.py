"""`python -m novita_manager …` runs the command line as the `novita-manager` script does."""

from novita_manager.entry import main

if __name__ == "__main__":  # not when a spawned child process imports it as `__mp_main__`
    main()
