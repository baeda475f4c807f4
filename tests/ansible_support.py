"""Running the real ansible-core against the collection in contrib/ansible.

- `build_and_install`: `ansible-galaxy collection build` the collection, then install the
  tarball into a private collections path, as a user would.
- `sanity`: `ansible-test sanity` needs the collection at ansible_collections/NS/NAME/;
  it is copied there in a temporary directory. ansible-test runs each sanity test in a
  virtual environment of its own with pinned linters (pylint, pycodestyle, yamllint,
  voluptuous, ...), kept under ~/.ansible/test/venv; scripts/setup.sh primes them
  (`python tests/ansible_support.py prime-sanity`) so that the suite needs no network.
- `Controller`: an ansible.cfg and an inventory in a temporary directory; the hosts are
  containers booted on this machine (tests/systemd_container.py), reached with the
  nsenter connection plugin in tests/ansible_plugins (ansible_host = the container's
  init PID). Each task's whole result is read back through the `results` callback there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from support import ROOT

COLLECTION = ROOT / "contrib" / "ansible"
NAMESPACE, NAME = "inetd2systemd", "fleet"
BIN = Path(sys.executable).parent  # the project's virtual environment
PLUGINS = Path(__file__).resolve().parent / "ansible_plugins"  # nsenter connection, results callback

# ansible-test bootstraps pip into each new sanity environment with a get-pip script it
# downloads from a CI file host; where that host cannot be reached, this stand-in in its
# cache does the same with the interpreter's own ensurepip and then pip from the index.
GET_PIP_STANDIN = '''\
"""Stands in for get-pip.py in ansible-test's cache (written by inetd2systemd's tests)."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", *args])
'''


def available() -> str | None:
    """Why ansible-core cannot be run here, or None."""
    for tool in ("ansible", "ansible-playbook", "ansible-galaxy", "ansible-test"):
        if not (BIN / tool).exists():
            return f"{tool} is not installed in {BIN} (scripts/setup.sh installs ansible-core)"
    return None


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PATH=f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}", ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", PYTHONWARNINGS="ignore", LC_ALL="C.UTF-8")
    env.update(extra)
    return env


def run(argv: list[str], cwd: Path | None = None, env: dict | None = None, timeout: float = 300,
        check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, cwd=cwd, env=env or environment(), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-6000:]}\n"
                             f"{proc.stderr[-4000:]}")
    return proc


def collection_tree(into: Path) -> Path:
    """A copy of the collection at INTO/ansible_collections/NS/NAME (for ansible-test)."""
    target = into / "ansible_collections" / NAMESPACE / NAME
    shutil.copytree(COLLECTION, target, ignore=shutil.ignore_patterns("__pycache__", "output", "*.tar.gz"))
    return target


def build_and_install(into: Path) -> tuple[Path, Path]:
    """(the built tarball, the collections path it was installed into)."""
    dist = into / "dist"
    run([str(BIN / "ansible-galaxy"), "collection", "build", str(COLLECTION), "--output-path", str(dist)])
    tarball = next(dist.glob(f"{NAMESPACE}-{NAME}-*.tar.gz"))
    collections = into / "collections"
    run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", str(tarball),
         "-p", str(collections)])
    return tarball, collections


def ensure_pip_standin() -> None:
    from ansible_test._internal.python_requirements import get_venv_packages

    class Python:  # the one field get_venv_packages reads
        version = f"{sys.version_info.major}.{sys.version_info.minor}"

    pip = get_venv_packages(Python())["pip"]
    cache = Path.home() / ".ansible" / "test" / "cache" / f"get_pip_{pip.replace('.', '_')}.py"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(GET_PIP_STANDIN)


def sanity(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`ansible-test sanity ARGS` on a copy of the collection."""
    ensure_pip_standin()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    with tempfile.TemporaryDirectory(prefix="i2s-ansible-test-") as tmp:
        tree = collection_tree(Path(tmp))
        return run([str(BIN / "ansible-test"), "sanity", "--python", python, "--color", "no", *args],
                   cwd=tree, timeout=timeout, check=False)


class Controller:
    """An Ansible controller in a directory: ansible.cfg, inventory.yml, the installed collection."""

    def __init__(self, directory: Path, collections: Path, inventory: dict) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "local").mkdir(exist_ok=True)
        (self.dir / "ansible.cfg").write_text(
            "[defaults]\n"
            f"inventory = {self.dir / 'inventory.yml'}\n"
            f"collections_path = {collections}\n"
            f"connection_plugins = {PLUGINS / 'connection'}\n"
            f"callback_plugins = {PLUGINS / 'callback'}\n"
            "callbacks_enabled = results\n"
            "bin_ansible_callbacks = true\n"
            f"local_tmp = {self.dir / 'local'}\n"
            "interpreter_python = /usr/bin/python3\n"
            "retry_files_enabled = false\n"
            "callback_result_format = yaml\n"
            "forks = 5\n"
            "timeout = 60\n"
            "[connection]\npipelining = true\n")
        (self.dir / "inventory.yml").write_text(json.dumps(inventory, indent=2))
        self.env = environment(ANSIBLE_CONFIG=str(self.dir / "ansible.cfg"))

    def _run(self, argv: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, dict]:
        """Run an ansible command; (its process, host -> list of its task results)."""
        results = Path(tempfile.mkdtemp(prefix="results-", dir=self.dir))
        env = dict(self.env, I2S_ANSIBLE_RESULTS=str(results))
        proc = run(argv, cwd=self.dir, env=env, timeout=timeout, check=False)
        by_host = {p.stem: [json.loads(line) for line in p.read_text().splitlines()]
                   for p in results.glob("*.jsonl")}
        return proc, by_host

    def playbook(self, playbook: str, *args: str, timeout: float = 600):
        """(the process, host -> its task results in order)."""
        return self._run([str(BIN / "ansible-playbook"), playbook, *args], timeout)

    def module(self, hosts: str, module: str, args: dict, *options: str,
               timeout: float = 300) -> dict[str, dict]:
        """Run one module ad hoc; host -> its result."""
        proc, by_host = self._run([str(BIN / "ansible"), hosts, "-m", module, "-a", json.dumps(args),
                                   *options], timeout)
        if not by_host:
            raise AssertionError(f"ansible gave no result (exit {proc.returncode}):\n"
                                 f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return {host: dict(results[-1], _output=proc.stdout + proc.stderr)
                for host, results in by_host.items()}


if __name__ == "__main__" and sys.argv[1:] == ["prime-sanity"]:
    # scripts/setup.sh: create ansible-test's sanity environments now (idempotent)
    proc = sanity("--prime-venvs")
    if proc.returncode:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
    sys.exit(proc.returncode)
