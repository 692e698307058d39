"""Run a Python script in a private mount namespace with small tmpfs mounts (read-only or
nearly full file systems made for real, not simulated).

``unshare --user --map-root-user --mount`` gives the script its own mount table, so the test
can mount a tmpfs of a few hundred KB (a full disk) or remount one read-only without touching
the machine's mounts; everything vanishes when the script exits. Where unprivileged user
namespaces are disabled, :func:`mount_namespaces_work` is False and the tests that need them
are skipped with that reason.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["PRELUDE", "mount_namespaces_work", "run_in_namespace"]

UNSHARE = ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]

#: Helpers available to every script: mount/remount a tmpfs, run the CLI, report JSON.
PRELUDE = textwrap.dedent(
    f"""
    import json, os, subprocess, sys
    from pathlib import Path

    def mount_tmpfs(path, size, ro=False):
        Path(path).mkdir(parents=True, exist_ok=True)
        opts = f"size={{size}}" + (",ro" if ro else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True)

    def remount(path, opts):
        subprocess.run(["mount", "-o", "remount," + opts, str(path)], check=True)

    def cli(*args, env=None):
        e = dict(os.environ, COLUMNS="200")
        e.update(env or {{}})
        p = subprocess.run([{sys.executable!r}, "-m", "cellcensus._cli", *map(str, args)],
                           capture_output=True, text=True, env=e, timeout=600)
        return {{"rc": p.returncode, "out": p.stdout, "err": p.stderr}}

    def files(root):
        root = Path(root)
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    RESULT = {{}}
    """
)


@functools.cache
def mount_namespaces_work() -> bool:
    """Whether this machine lets the tests mount a tmpfs in a private namespace."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = "mkdir -p /tmp/.cc-ns-probe && mount -t tmpfs -o size=64k tmpfs /tmp/.cc-ns-probe"
    try:
        proc = subprocess.run(
            [*UNSHARE, "sh", "-c", probe], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def run_in_namespace(body: str, *, env: dict[str, str], timeout: float = 900) -> dict[str, Any]:
    """Run ``PRELUDE + body`` in a private mount namespace; return the script's ``RESULT``.

    The script must fill the dict ``RESULT``; it is printed as JSON on the last line.
    """
    script = PRELUDE + textwrap.dedent(body) + "\nprint(json.dumps(RESULT))\n"
    proc = subprocess.run(
        [*UNSHARE, sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        msg = f"namespace script failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        raise AssertionError(msg)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def tmp_dir_for(tmp_path: Path, name: str) -> Path:
    """A directory to mount on (created; the mount hides its content inside the namespace)."""
    d = tmp_path / name
    d.mkdir(parents=True, exist_ok=True)
    return d
