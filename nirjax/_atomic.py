"""Atomic file output: write to a temporary file beside the target, then rename it into place,
so an interrupted job never leaves a truncated or half-written file.

The temporary is named `.tmp-<target name>.pid<process id>-<random><suffix>`. A job killed before
the rename (kill -9, power loss) leaves it behind; the next write of the same target, or
`remove_stale_temporaries` on the target or its folder (which the commands call when they
start), removes every such file whose process no longer runs. Files of a live process (another
job writing the same target right now) are left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator

_PREFIX = ".tmp-"
_NAME = 80  # characters of the target's name kept in the temporary's name
_PID = re.compile(r"\.pid(\d+)-[a-z0-9_]+")


def _stem(path: str) -> str:
    return _PREFIX + os.path.basename(path)[:_NAME] + "."


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _owner(name: str, stem: str | None) -> int | None:
    """The process id in a temporary's name (of `stem`'s target if given), else None."""
    if not name.startswith(stem or _PREFIX):
        return None
    if stem is not None:
        m = _PID.match(name, len(stem) - 1)
        return int(m.group(1)) if m else None
    found = _PID.findall(name)
    return int(found[-1]) if found else None


def remove_stale_temporaries(path: str | os.PathLike) -> list[str]:
    """Remove the temporaries left by killed jobs: for a folder, every one in it; for a file
    path, those of that target. Returns the paths removed."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        folder, stem = path, None
    else:
        folder, stem = os.path.dirname(path), _stem(path)
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        pid = _owner(name, stem)
        full = os.path.join(folder, name)
        if pid is None or _alive(pid) or not os.path.isfile(full):
            continue
        with contextlib.suppress(FileNotFoundError):  # another job removed it first
            os.unlink(full)
            removed.append(full)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path in the target's folder; on success it replaces `path`, on error
    it is removed and `path` is left as it was. An `OSError` names `path`, not the temporary.

        with atomic_path("model.nir") as tmp:
            nir.write(tmp, graph)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=f"{_stem(path)}pid{os.getpid()}-", suffix=suffix,
                                   dir=folder)
    except OSError as e:
        raise OSError(e.errno, f"{path}: cannot write it ({e.strerror or e}); choose a "
                      "writable path") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # the permissions a plain open() would give, not mkstemp's 0600
    try:
        try:
            yield tmp
            os.replace(tmp, path)
        except OSError as e:  # about the temporary: name the user's path instead
            if getattr(e, "filename", None) != tmp and tmp not in str(e):
                raise
            text = e.strerror or str(e).replace(tmp, path)
            raise OSError(e.errno, f"{path}: cannot write it ({text})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
