"""Screenshots of the dashboard's main pages, desktop and narrow, into screenshots/.

Builds a throwaway SQLite database (catalog + the showcase leaderboard of
tests/dashboard/scenario.py) in a temporary folder, serves Podium from this process and
drives Debian's chromium through Playwright. Nothing is downloaded.

    .venv/bin/python .ci/screenshots.py [--out screenshots] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VIEWPORTS = {"desktop": (1366, 900), "narrow": (390, 844)}


def _configure(var_dir: Path) -> None:
    """Embedded defaults in a temporary folder: SQLite, no broker traffic."""
    os.environ["PODIUM_ENV"] = "development"
    os.environ["PODIUM_VAR_DIR"] = str(var_dir)
    os.environ["DEBUG"] = "false"
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    for path in (REPO_ROOT, REPO_ROOT / "platform"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


@contextmanager
def _serve() -> Iterator[str]:
    """Podium (with its static files) on a free local port, in a background thread."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    server.set_app(StaticFilesHandler(get_wsgi_application()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "screenshots")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "")
    args = parser.parse_args()
    if not args.chromium:
        print("screenshots: no chromium found; install it (apt-get install chromium).")
        return 1

    with tempfile.TemporaryDirectory(prefix="podium-screens-") as scratch:
        _configure(Path(scratch))
        import django

        django.setup()
        from django.core.management import call_command
        from playwright.sync_api import sync_playwright

        from tests.dashboard.scenario import build_showcase

        call_command("migrate", verbosity=0)
        showcase = build_showcase()
        pages = {
            "home": "/",
            "leaderboard": "/suites/glue/",
            "leaderboard-kemeny": "/suites/glue/?rule=kemeny",
            "rules": "/suites/glue/rules/",
            "efficiency": "/suites/glue/efficiency/",
            "run": f"/runs/{showcase.curve_run.uuid}/",
            "run-reproduction": f"/runs/{showcase.reproduction.uuid}/",
            "run-live": f"/runs/{showcase.live_run.uuid}/",
            "compare": f"/compare/?runs={showcase.curve_run.uuid},{showcase.reproduction.uuid}",
            "task": "/benchmarks/glue/sst2/",
        }
        args.out.mkdir(parents=True, exist_ok=True)
        errors: list[str] = []
        with _serve() as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=args.chromium, args=["--no-sandbox"]
            )
            for viewport, (width, height) in VIEWPORTS.items():
                page = browser.new_page(viewport={"width": width, "height": height})
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.on(
                    "console",
                    lambda message: (
                        errors.append(message.text) if message.type == "error" else None
                    ),
                )
                for name, path in pages.items():
                    page.goto(base + path, wait_until="networkidle")
                    for chart in page.locator(".chart").all():
                        chart.locator(".main-svg").first.wait_for(timeout=15_000)
                    target = args.out / f"{name}-{viewport}.png"
                    page.screenshot(path=str(target), full_page=True)
                    print(f"screenshots: {os.path.relpath(target)}")
                page.close()
            browser.close()
        if errors:
            print("screenshots: the browser reported errors:\n  " + "\n  ".join(errors))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
