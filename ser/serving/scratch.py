"""The one folder a server writes its own files into: bounded in size, expiring, removed at the end.

The app offers downloads (a batch's ``predictions.csv``, a timeline's CSV and JSON). Each write
gets a subfolder of :class:`ScratchFolder` (so the file keeps its readable name); subfolders older
than ``ttl_s`` are removed, and when the folder holds more than ``max_bytes`` the oldest ones go
first; :meth:`ScratchFolder.close` removes everything. The app puts the folder inside Gradio's own
cache (``ser-<pid>`` under ``GRADIO_TEMP_DIR``), so Gradio serves the files where they are instead
of copying them, and its ``delete_cache`` expires them on the uploads' schedule too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

from ..errors import ParameterError

__all__ = ["ScratchFolder"]

T = TypeVar("T")


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:  # removed meanwhile (Gradio's own expiry)
                pass
    return total


class ScratchFolder:
    """A folder of per-write subfolders, at most ``max_bytes`` in total, each kept ``ttl_s`` seconds.

    Parameters
    ----------
    root : path
        The folder (created on first write; owned: :meth:`close` removes it).
    ttl_s : float
        Seconds a subfolder is kept.
    max_bytes : int
        Total size; the oldest subfolders are removed to stay under it, and a single write larger
        than this is refused.
    clock : callable
        Wall-clock seconds (compared with file times; tests pass a fake one).
    """

    def __init__(self, root: str | os.PathLike, *, ttl_s: float, max_bytes: int,
                 clock: Callable[[], float] = time.time):
        self.root, self.ttl_s, self.max_bytes, self._clock = Path(root), float(ttl_s), int(max_bytes), clock
        self._lock = threading.Lock()
        self._made: dict[Path, float] = {}  # subfolder -> when it was made

    def write(self, prefix: str, writer: Callable[[Path], T]) -> T:
        """``writer(folder)`` into a new subfolder; then the bounds are enforced. Returns what it returns.

        Raises
        ------
        ParameterError
            What was written exceeds ``max_bytes`` alone (it is removed).
        """
        with self._lock:
            self._expire()
            self.root.mkdir(parents=True, exist_ok=True)
            folder = Path(tempfile.mkdtemp(prefix=prefix, dir=self.root))
            self._made[folder] = self._clock()
        try:
            out = writer(folder)
        except BaseException:
            self._remove(folder)
            raise
        size = _size(folder)
        if size > self.max_bytes:
            self._remove(folder)
            raise ParameterError(f"The file to download would take {size / 2**20:.1f} MiB; the server keeps at "
                                 f"most {self.max_bytes / 2**20:.0f} MiB of downloads (setting SER_SCRATCH_MAX_MB).")
        with self._lock:
            self._evict(keep=folder)
        return out

    def sweep(self) -> None:
        """Remove the subfolders older than ``ttl_s`` (also done before every write)."""
        with self._lock:
            self._expire()

    def close(self) -> None:
        """Remove the folder and everything in it."""
        with self._lock:
            self._made.clear()
            shutil.rmtree(self.root, ignore_errors=True)

    def size(self) -> int:
        """Bytes held now."""
        return _size(self.root) if self.root.exists() else 0

    # -- inside the lock -------------------------------------------------------------------------
    def _remove(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        self._made.pop(folder, None)

    def _expire(self) -> None:
        now = self._clock()
        for folder, made in list(self._made.items()):
            if now - made >= self.ttl_s or not folder.exists():
                self._remove(folder)

    def _evict(self, *, keep: Path) -> None:
        sizes = {f: _size(f) for f in self._made}
        total = sum(sizes.values())
        for folder in sorted(self._made, key=self._made.get):  # oldest first
            if total <= self.max_bytes:
                break
            if folder != keep:
                total -= sizes[folder]
                self._remove(folder)
