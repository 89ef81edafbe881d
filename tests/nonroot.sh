#!/usr/bin/env bash
# Runs the tests marked `nonroot` as an unprivileged user (netjail must work rootless, with user namespaces).
# Called by scripts/test when it runs as root. The user gets its own copy of the interpreter, the venv's
# packages and the checkout under /opt/netjail-nonroot, because /root (where pyenv keeps interpreters, and
# where a checkout may live) is private.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
user=${NETJAIL_TEST_USER:-netjail-test}
base=/opt/netjail-nonroot
venv_python="$repo/.venv/bin/python"

[ "$(id -u)" -eq 0 ] || { echo "nonroot.sh: run as root (it creates the test user)" >&2; exit 2; }
id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"

prefix=$("$venv_python" -c 'import sys; print(sys.base_prefix)')
site=$("$venv_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
rm -rf "$base"
mkdir -p "$base"
cp -a "$prefix" "$base/python"
libdir="$base/python/lib"
LD_LIBRARY_PATH="$libdir" "$base/python/bin/python3" -m venv --without-pip "$base/venv"
new_site=$(LD_LIBRARY_PATH="$libdir" "$base/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp -a "$site/." "$new_site/"
rm -f "$new_site"/__editable__* "$new_site"/*netjail*.pth
mkdir -p "$base/src"
tar -C "$repo" --exclude=.venv --exclude=.git --exclude=__pycache__ -cf - . | tar -C "$base/src" -xf -
# An editable install of the copy, as scripts/setup makes: it maps addons/ and configs/ to netjail.addons and
# netjail.configs. The checkout on sys.path too makes `tests` importable, as `python -m pytest` run in it does.
LD_LIBRARY_PATH="$libdir" "$base/venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
  --no-index --no-build-isolation -e "$base/src"
echo "$base/src" > "$new_site/netjail-src.pth"
cat > "$base/venv/bin/netjail" <<SCRIPT
#!$base/venv/bin/python
import sys
from netjail.cli import main
sys.exit(main())
SCRIPT
chmod 755 "$base/venv/bin/netjail"
chmod -R a+rX "$base"

cd /tmp
exec runuser -u "$user" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="/home/$user" LANG=C.UTF-8 \
  LD_LIBRARY_PATH="$libdir" "$base/venv/bin/python" -m pytest -p no:cacheprovider -m nonroot \
  --rootdir "$base/src" -c "$base/src/pyproject.toml" "$@" "$base/src/tests"
