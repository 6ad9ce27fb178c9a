"""Run the ``refopt`` command line: ``python -m refopt``."""

from refopt.cli import main

raise SystemExit(main())
