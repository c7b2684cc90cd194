#!/usr/bin/env bash
# Makes sure Debian's chromium is there for the browser tests (Playwright drives it; no
# browser is downloaded at test time). Installs it from the OS packages when missing, as
# root or through passwordless sudo; without either, says so and the browser tests skip.
set -euo pipefail

command -v chromium >/dev/null 2>&1 && exit 0

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo -n "$@"; else return 1; fi
}

echo "chromium.sh: installing chromium from the OS packages (for the browser tests)" >&2
if ! { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
  && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
  echo "chromium.sh: could not install chromium (apt-get install chromium); the browser tests will be skipped" >&2
fi
