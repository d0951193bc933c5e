"""`python -m proxy` runs the command-line interface."""

from proxy.cli import main

raise SystemExit(main())
