"""`python -m bulkctl` runs the same entry point as the console script."""

from bulkctl.cli import main

if __name__ == "__main__":
    main()
