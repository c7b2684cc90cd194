"""``python -m leaderboard <command>``; subcommands register in their own modules."""

from __future__ import annotations

import sys

from leaderboard.ranking.cli import main

if __name__ == "__main__":
    sys.exit(main())
