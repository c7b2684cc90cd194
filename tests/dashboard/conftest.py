"""Fixtures of the dashboard tests: the loaded catalog and the showcase leaderboard."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from tests.dashboard.scenario import Showcase, build_showcase


@pytest.fixture
def catalog(db: None) -> None:
    call_command("load_catalog", verbosity=0, stdout=io.StringIO())


@pytest.fixture
def showcase(db: None) -> Showcase:
    """GLUE with four systems where the mean and Kemeny disagree (see scenario.py)."""
    return build_showcase()
