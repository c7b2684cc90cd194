"""Where the client finds its server and token, and where it keeps what it could not send.

Order: explicit arguments, then PODIUM_URL / PODIUM_TOKEN, then the credentials file that
`podium login` writes ($XDG_CONFIG_HOME/podium/credentials, ~/.config by default; mode
0600 because it holds a secret). Points that could not be sent are spooled under
PODIUM_SPOOL_DIR, by default $XDG_STATE_HOME/podium/spool (~/.local/state).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from podium.errors import PodiumError

ENV_URL = "PODIUM_URL"
ENV_TOKEN = "PODIUM_TOKEN"
ENV_SPOOL = "PODIUM_SPOOL_DIR"


def _xdg(variable: str, default: str) -> Path:
    value = os.environ.get(variable, "")
    # The XDG spec says a relative path is invalid and is to be ignored.
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / default


def credentials_path() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "podium" / "credentials"


def spool_root() -> Path:
    value = os.environ.get(ENV_SPOOL, "")
    return Path(value) if value else _xdg("XDG_STATE_HOME", ".local/state") / "podium" / "spool"


@dataclass(frozen=True, kw_only=True)
class Credentials:
    url: str  # the server's base URL, e.g. https://podium.example.org
    token: str


def normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise PodiumError(f"{url!r} is not a server URL: give it as http(s)://host[:port].")
    return url


def _read_file() -> dict[str, str]:
    path = credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise PodiumError(f"cannot read {path}: {error}; run `podium login` again.") from None
    if not isinstance(data, dict):
        raise PodiumError(f"{path} is not a credentials file; run `podium login` again.")
    return {k: str(v) for k, v in data.items() if k in ("url", "token")}


def load_credentials(*, url: str | None = None, token: str | None = None) -> Credentials:
    """The server and token to use; a PodiumError says how to provide whichever is missing."""
    stored = _read_file()
    chosen_url = url or os.environ.get(ENV_URL) or stored.get("url", "")
    chosen_token = token or os.environ.get(ENV_TOKEN) or ""
    # The stored token belongs to the stored server: never send it anywhere else.
    if (
        not chosen_token
        and stored.get("url")
        and normalise_url(stored["url"]) == (normalise_url(chosen_url) if chosen_url else "")
    ):
        chosen_token = stored.get("token", "")
    if not chosen_url:
        raise PodiumError(f"no Podium server: run `podium login` or set {ENV_URL}.")
    if not chosen_token:
        raise PodiumError(
            f"no API token for {chosen_url}: run `podium login` or set {ENV_TOKEN} "
            "(create a token at /api/v1/tokens/ or in your account)."
        )
    return Credentials(url=normalise_url(chosen_url), token=chosen_token)


def save_credentials(credentials: Credentials) -> Path:
    """Write the credentials file atomically, readable by its owner only."""
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    content = json.dumps({"url": credentials.url, "token": credentials.token}, indent=2) + "\n"
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".credentials-")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
