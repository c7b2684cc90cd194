"""Load the benchmark catalog files (leaderboard/benchmarks/*.yaml) into the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.services import CatalogConflict, MethodDefinition, catalog_load, methods_sync
from leaderboard.catalog import CatalogError, load_catalog
from runners.registry import all_methods


class Command(BaseCommand):
    help = (
        "Load or update benchmarks, tasks and official suites, and the methods the runners "
        "register. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--directory",
            type=Path,
            default=None,
            help="Read definitions from this folder instead of the packaged ones.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            definitions = load_catalog(options["directory"])
            report = catalog_load(benchmarks=definitions)
        except (CatalogError, CatalogConflict) as error:
            raise CommandError(str(error)) from None
        new_methods = methods_sync(
            methods=[
                MethodDefinition(
                    key=m.key,
                    name=m.name,
                    description=m.description,
                    paper_url=m.paper_url,
                    schema=dict(m.schema),
                )
                for m in all_methods()
            ]
        )
        tasks = sum(len(b.tasks) for b in definitions)
        self.stdout.write(
            f"Catalog: {len(definitions)} benchmarks, {tasks} tasks "
            f"({len(report.tasks_created)} new, {len(report.tasks_unchanged)} unchanged); "
            f"suites published: {', '.join(report.suites_published) or 'none'}; "
            f"methods: {len(all_methods())} ({len(new_methods)} new)."
        )
