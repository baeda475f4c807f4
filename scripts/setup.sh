#!/usr/bin/env bash
# One-time set-up on a fresh Debian 12 machine (run as root): the Debian packages the
# suite is tested and benchmarked against, and a virtual environment in .venv.
# Safe to run again: every step is idempotent and skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  python3 python3-venv python3-dev gcc pkg-config libsystemd-dev   # venv + systemd-python
  python3-systemd                                                   # the journal sink for the units' python3
  systemd systemd-container                                         # real systemd in a container
  xinetd rsyslog libwrap0 libbsd0 tcpd                              # the peers
  tftpd-hpa tftp-hpa socat bsdutils iproute2 procps                 # real clients and servers
  debhelper dh-python pybuild-plugin-pyproject python3-all          # the Debian package's build
  python3-setuptools lintian                                        # (tests/test_packaging_deb.py)
  groff-base zsh                                                    # man pages, completion (test_packaging_docs.py)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  # The peers must not start on the machine's default ports: forbid service starts
  # during the install (policy-rc.d exit 101 = "action forbidden").
  policy=/usr/sbin/policy-rc.d
  had_policy=0; [ -e "$policy" ] && had_policy=1
  if [ "$had_policy" = 0 ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$had_policy" = 0 ]; then rm -f "$policy"; fi
fi

# xinetd, openbsd-inetd and inetutils-inetd conflict as Debian packages (all provide
# inet-superserver); the benchmarks and the reading tests need each, so the two inetds
# are unpacked privately (nothing is configured or started).
PEERS=/opt/inetd2systemd-peers
for peer in openbsd-inetd:usr/sbin/inetd inetutils-inetd:usr/sbin/inetutils-inetd; do
  package=${peer%%:*}
  if [ ! -x "$PEERS/$package/${peer#*:}" ]; then
    tmp=$(mktemp -d); chmod 777 "$tmp"
    (cd "$tmp" && apt-get download -qq "$package" 2>/dev/null)
    mkdir -p "$PEERS/$package"
    dpkg -x "$tmp"/"$package"_*.deb "$PEERS/$package"
    rm -rf "$tmp"
  fi
done

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# Reinstall only when the project's metadata changed since the last install.
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -e "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[test,journal]'
  rm -f .venv/.installed-*; touch "$stamp"
fi

# ansible-test (ansible-core) runs each sanity test of the Ansible collection in
# contrib/ansible in a virtual environment of its own, with pinned linters from PyPI:
# create those now so that the suite needs no network. Kept under ~/.ansible/test;
# a second run finds them there (under a second).
.venv/bin/python tests/ansible_support.py prime-sanity >/dev/null
