"""`python -m shared ...`: the operator CLI (shared/cli)."""

from shared.cli.main import main

raise SystemExit(main())
