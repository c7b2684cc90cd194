"""Podium's Python client: track runs from your own training code, submit results, read
leaderboards.

    import podium

    with podium.init(task="glue/sst2", method="lora", backbone="minilm", config={"r": 8}) as run:
        for step in range(steps):
            run.log({"loss": loss}, step=step)
        run.finish(scores={"accuracy": 0.91})

Standard library only (no Django, no requests): `pip install podium` gives this package and
the `podium` command. The server and token come from PODIUM_URL and PODIUM_TOKEN, or from
the credentials file `podium login` writes.
"""

from __future__ import annotations

from podium.errors import ApiError, PodiumError, Unreachable
from podium.tracking import Run, init

__all__ = ["ApiError", "PodiumError", "Run", "Unreachable", "__version__", "init"]

__version__ = "0.1.0"
