"""`python -m podium`: the `podium` command."""

from __future__ import annotations

from podium.cli import main

raise SystemExit(main())
