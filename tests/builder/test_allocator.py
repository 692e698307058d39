"""The builder's allocator settings (glibc): large buffers get their own mappings, env wins."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cellcensus.builder import _allocator
from cellcensus.builder._allocator import _is_glibc
from tests._cli import cli_env

pytestmark = pytest.mark.skipif(not _is_glibc(), reason="the allocator settings are glibc's")

# Frees a 1 MiB block, then counts how many of the next 1 MiB allocation glibc maps on its own
# (mallinfo2's hblks). With glibc's defaults the freed block raised the dynamic mmap threshold,
# so the second block comes from the heap (0); with the builder's fixed threshold it is mapped (1).
# The module is loaded on its own (not through ``cellcensus.builder``, whose imports would leave
# free heap chunks of any size behind, which glibc uses before it maps anything): the heap is
# then the fresh interpreter's, and the outcome does not depend on the environment.
_PROBE = """
import ctypes, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("allocator", sys.argv[2])
allocator = importlib.util.module_from_spec(spec)
spec.loader.exec_module(allocator)
_libc, tune_allocator = allocator._libc, allocator.tune_allocator

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = _libc()
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
done = tune_allocator() if sys.argv[1] == "tune" else {}
libc.free(libc.malloc(1 << 20))
before = libc.mallinfo2().hblks
p = libc.malloc(1 << 20)
mapped = libc.mallinfo2().hblks - before
libc.free(p)
print(json.dumps({"set": done, "mapped": mapped}))
"""


def _probe(mode: str, **env: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode, _allocator.__file__],
        env=cli_env(**env),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_tuned_allocator_maps_large_buffers_after_a_free() -> None:
    assert _probe("default") == {"set": {}, "mapped": 0}
    assert _probe("tune") == {
        "set": {"MALLOC_MMAP_THRESHOLD_": 256 * 1024, "MALLOC_ARENA_MAX": 2},
        "mapped": 1,
    }


def test_allocator_settings_from_the_environment_are_kept() -> None:
    result = _probe("tune", MALLOC_MMAP_THRESHOLD_="4194304")
    assert result == {"set": {"MALLOC_ARENA_MAX": 2}, "mapped": 0}
