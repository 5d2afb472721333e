"""``python -m filamentctl``."""

from filamentctl.cli.main import main

if __name__ == "__main__":
    main()
