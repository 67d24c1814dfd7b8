"""`python -m hive_nornir`: the CLI."""

from hive_nornir.cli import main

raise SystemExit(main())
