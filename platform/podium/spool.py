"""A run's unsent work on local disk, uploaded later by the run itself or by `podium sync`.

One folder per run, named by the client's own id for it:

    run.json            the server, the creation request and its Idempotency-Key, the
                        server's run id once known
    points-*.jsonl      points, one JSON array [key, step, value, unix time] a line
    finish.json         the finish request, when it could not be delivered
    .lock               held (flock) by the process whose run this is, while it runs

Every file is written to a temporary name and renamed, so a crash never leaves half a
file; a folder is removed once everything in it is on the server.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

Point = tuple[str, int, float, float]  # key, step, value, unix time

_META = "run.json"
_FINISH = "finish.json"
_LOCK = ".lock"
_counter = itertools.count()


def _write_atomically(path: Path, content: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class RunSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock_file: IO[str] | None = None

    @classmethod
    def create(
        cls,
        root: Path,
        *,
        local_id: str,
        url: str,
        create_body: dict[str, Any],
        idempotency_key: str,
        uuid: str | None,
    ) -> RunSpool:
        spool = cls(root / local_id)
        spool.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not (spool.directory / _META).exists():
            meta = {
                "url": url,
                "create": create_body,
                "idempotency_key": idempotency_key,
                "uuid": uuid,
            }
            _write_atomically(spool.directory / _META, json.dumps(meta, indent=1))
        return spool

    # --- ownership --------------------------------------------------------------------

    def try_lock(self) -> bool:
        """Take the folder for this process; False if a live process holds it."""
        handle = (self.directory / _LOCK).open("a")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_file = handle
        return True

    def unlock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    # --- content ----------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        data = json.loads((self.directory / _META).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{self.directory / _META} is not a JSON object")
        return data

    def set_uuid(self, uuid: str) -> None:
        meta = self.meta()
        if meta.get("uuid") != uuid:
            meta["uuid"] = uuid
            _write_atomically(self.directory / _META, json.dumps(meta, indent=1))

    def add_points(self, points: Sequence[Point]) -> Path:
        # Names sort in the order the chunks were written.
        name = f"points-{time.time_ns():020d}-{os.getpid()}-{next(_counter):06d}.jsonl"
        path = self.directory / name
        lines = "".join(json.dumps(list(point), separators=(",", ":")) + "\n" for point in points)
        _write_atomically(path, lines)
        return path

    def chunks(self) -> list[Path]:
        return sorted(self.directory.glob("points-*.jsonl"))

    @staticmethod
    def read_chunk(path: Path) -> list[Point]:
        points: list[Point] = []
        with path.open(encoding="utf-8") as file:
            for line in file:
                if line.strip():
                    key, step, value, at = json.loads(line)
                    points.append((str(key), int(step), float(value), float(at)))
        return points

    def point_count(self) -> int:
        total = 0
        for path in self.chunks():
            with path.open(encoding="utf-8") as file:
                total += sum(1 for line in file if line.strip())
        return total

    def set_finish(self, body: dict[str, Any]) -> None:
        _write_atomically(self.directory / _FINISH, json.dumps(body, indent=1))

    def finish(self) -> dict[str, Any] | None:
        path = self.directory / _FINISH
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None

    def clear_finish(self) -> None:
        (self.directory / _FINISH).unlink(missing_ok=True)

    def is_done(self) -> bool:
        return not self.chunks() and self.finish() is None

    def remove(self) -> None:
        """Delete the folder: only once everything in it has been delivered."""
        self.unlock()
        shutil.rmtree(self.directory, ignore_errors=True)


def pending_spools(root: Path) -> Iterator[RunSpool]:
    """Spooled runs under root, oldest first."""
    if not root.is_dir():
        return
    folders = [p for p in root.iterdir() if p.is_dir() and (p / _META).exists()]
    for folder in sorted(folders, key=lambda p: (p / _META).stat().st_mtime):
        yield RunSpool(folder)


@contextlib.contextmanager
def locked(spool: RunSpool) -> Iterator[bool]:
    """Hold a spool for the duration; yields False (holding nothing) if another process has it."""
    if not spool.try_lock():
        yield False
        return
    try:
        yield True
    finally:
        spool.unlock()
