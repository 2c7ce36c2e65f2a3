"""Where graphopt writes: beside, never over.

An output folder (``compile -o OUT``, ``Compiled.save``) is written whole into a fresh
folder beside its destination, with a marker file listing what graphopt wrote, and renamed
into place only where nothing but graphopt's own output would be lost: the destination does
not exist, is an empty folder, or is an earlier output folder (its marker, and nothing the
marker does not list). An earlier output is renamed aside, the new one renamed in, and
only then are the old one's listed files deleted. Anything else is refused before a byte
is written, and nothing is deleted. A ``--dump-dir`` folder is kept the same way, with its
own marker. Single files (``run -o``, ``opt -o``) are written to a temporary file beside
them and renamed over, and only over a file of the kind graphopt writes there.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from graphopt.errors import GraphoptError

MARKER = ".graphopt-output"
DUMP_MARKER = ".graphopt-dump"
_MARKER_MAX_BYTES = 16 << 20


def _version() -> str:
    from graphopt.version import __version__

    return __version__


def _resolved(path: Path) -> Path:
    try:
        return (Path.cwd() / path).resolve()  # symbolic links first, then "..", as the system does
    except (OSError, RuntimeError) as e:  # a link loop, a name too long for the system
        raise GraphoptError(f"{path}: cannot be resolved ({getattr(e, 'strerror', None) or e}); check the path") from None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _walk(folder: Path, rel: str = "") -> Iterator[tuple[str, str]]:
    """(relative posix path, "file" | "folder" | "other") of everything under ``folder``,
    a folder before what it holds; symbolic links are "other" and never followed."""
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        path = f"{rel}{e.name}"
        if e.is_symlink():
            yield path, "other"
        elif e.is_dir(follow_symlinks=False):
            yield path, "folder"
            yield from _walk(Path(e.path), f"{path}/")
        elif e.is_file(follow_symlinks=False):
            yield path, "file"
        else:
            yield path, "other"


def _read_marker(folder: Path, marker: str) -> tuple[set[str], set[str]] | None:
    """The files and folders the marker lists, or None if it is missing or unreadable."""
    path = folder / marker
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > _MARKER_MAX_BYTES:
            return None
        data = json.loads(path.read_text())
        files, folders = data["files"], data.get("folders", [])
        if not all(isinstance(f, str) for f in [*files, *folders]):
            return None
        return set(files), set(folders)
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def marker_text(folder: Path, marker: str = MARKER, kind: str = "compile") -> str:
    """The marker for everything now under ``folder`` (itself left out)."""
    files, folders = [], []
    for rel, what in _walk(folder):
        if rel == marker:
            continue
        (files if what == "file" else folders).append(rel)
    return json.dumps({"graphopt": _version(), "kind": kind, "files": files, "folders": folders}, indent=1) + "\n"


def _previous_output(folder: Path, label: str, marker: str, what: str) -> bool:
    """Whether the existing folder is graphopt's own earlier output (False: empty);
    raise when it holds anything graphopt did not write."""
    with os.scandir(folder) as it:
        if next(it, None) is None:
            return False
    listed = _read_marker(folder, marker)
    if listed is None:
        if (folder / marker).exists() or (folder / marker).is_symlink():
            raise GraphoptError(f"{label}: its {marker} marker is unreadable; remove the folder or choose another")
        raise GraphoptError(
            f"{label}: exists and is not a {what} (no {marker} marker); remove it or choose another folder"
        )
    files, folders = listed
    for rel, kind in _walk(folder):
        if rel == marker or (kind == "file" and rel in files) or (kind == "folder" and rel in folders):
            continue
        raise GraphoptError(f"{label}: holds {rel}, which graphopt did not write; remove it or choose another folder")
    return True


def _check_parent(dest: Path, label: str) -> None:
    """The nearest existing ancestor of ``dest`` is a folder we may write into."""
    parent = dest.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise GraphoptError(f"{label}: {parent} is not a folder; choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GraphoptError(f"{label}: cannot write in {parent} (permission denied); choose another path")


def check_output_folder(
    dest: str | os.PathLike[str],
    label: str,
    keep: Iterable[str | os.PathLike[str]] = (),
    *,
    marker: str = MARKER,
    what: str = "graphopt output folder",
) -> bool:
    """Raise GraphoptError unless a new output may be put at ``dest``; True when ``dest``
    is an earlier output that putting it there replaces. ``keep``: files (the input
    model, input arrays) that must not be in the folder."""
    given = Path(dest)
    if given.is_symlink():
        raise GraphoptError(f"{label}: is a symbolic link; give the real folder or choose another")
    real = _resolved(given)
    for k in keep:
        if _inside(_resolved(Path(k)), real):
            raise GraphoptError(f"{label}: holds the input {k}; choose a new folder for the output")
    cwd = _resolved(Path.cwd())
    if _inside(cwd, real):
        which = "the current folder" if real == cwd else "a parent of the current folder"
        raise GraphoptError(f"{label}: is {which}; choose a new folder for the output")
    if not real.exists():
        _check_parent(real, label)
        return False
    if not real.is_dir():
        raise GraphoptError(f"{label}: exists and is not a folder; remove it or choose another folder")
    try:
        return _previous_output(real, label, marker, what)
    except OSError as e:
        raise GraphoptError(f"{label}: cannot read it ({e.strerror}); choose another folder") from None


def _fresh_name(dest: Path, tag: str) -> Path:
    return dest.with_name(f".{dest.name}.{tag}{secrets.token_hex(4)}")


def new_folder_beside(dest: str | os.PathLike[str], label: str) -> Path:
    """A new empty folder beside ``dest`` (its parents made) to write an output into."""
    real = _resolved(Path(dest))
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        while True:
            tmp = _fresh_name(real, "")
            try:
                tmp.mkdir()
                return tmp
            except FileExistsError:
                continue
    except OSError as e:
        raise GraphoptError(f"{label}: cannot write there ({e.strerror}); choose another path") from None


def write_folder(
    dest: str | os.PathLike[str],
    label: str,
    fill: Callable[[Path], Any],
    keep: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """Write an output folder all or nothing: ``fill(tmp)`` writes the files into a new
    folder beside ``dest``, which then replaces ``dest`` (install_folder); on any failure
    the new folder is removed and ``dest`` left as it was."""
    check_output_folder(dest, label, keep)
    tmp = new_folder_beside(dest, label)
    try:
        fill(tmp)
        install_folder(tmp, dest, label, keep)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise GraphoptError(f"{label}: cannot write it ({e.strerror or e}); choose another folder") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Path(dest)


def install_folder(
    tmp: Path,
    dest: str | os.PathLike[str],
    label: str,
    keep: Iterable[str | os.PathLike[str]] = (),
    *,
    marker: str = MARKER,
) -> None:
    """Write the marker into the finished folder ``tmp`` and rename it to ``dest``; an
    earlier output there is renamed aside first and its listed files deleted after."""
    real = _resolved(Path(dest))
    (tmp / marker).write_text(marker_text(tmp, marker))
    replacing = check_output_folder(dest, label, keep, marker=marker)
    if not replacing:
        try:
            os.rename(tmp, real)  # over an empty folder too; fails on anything else
        except OSError as e:
            raise GraphoptError(f"{label}: cannot put the output there ({e.strerror}); choose another folder") from None
        return
    aside = _fresh_name(real, "old.")
    try:
        os.rename(real, aside)
    except OSError as e:
        raise GraphoptError(f"{label}: cannot move the earlier output aside ({e.strerror})") from None
    try:
        os.rename(tmp, real)
    except OSError as e:
        os.rename(aside, real)
        raise GraphoptError(f"{label}: cannot put the output there ({e.strerror}); choose another folder") from None
    remove_listed(aside, marker, remove_folder=True)


def remove_listed(folder: Path, marker: str, *, remove_folder: bool = False) -> None:
    """Delete what ``folder``'s marker lists (and the marker); anything else stays, and
    so does every folder still holding something."""
    listed = _read_marker(folder, marker)
    if listed is None:
        return
    files, folders = listed
    entries = list(_walk(folder))
    for rel, kind in entries:
        if kind == "file" and rel in files:
            (folder / rel).unlink(missing_ok=True)
    (folder / marker).unlink(missing_ok=True)
    for rel, kind in reversed(entries):  # deepest first
        if kind == "folder" and rel in folders:
            try:
                (folder / rel).rmdir()
            except OSError:
                pass
    if remove_folder:
        try:
            folder.rmdir()
        except OSError:
            pass


# -- --dump-dir ----------------------------------------------------------------------------


def check_dump_dir(path: str | os.PathLike[str], label: str, keep: Iterable[str | os.PathLike[str]] = ()) -> bool:
    """Raise unless ``path`` may hold a pass dump: it does not exist, is empty, or is an
    earlier dump (True)."""
    given = Path(path)
    if given.is_symlink():
        raise GraphoptError(f"{label}: is a symbolic link; give the real folder or choose another")
    real = _resolved(given)
    for k in keep:
        if _inside(_resolved(Path(k)), real):
            raise GraphoptError(f"{label}: holds the input {k}; choose a new folder for the dump")
    if not real.exists():
        _check_parent(real, label)
        return False
    if not real.is_dir():
        raise GraphoptError(f"{label}: exists and is not a folder; remove it or choose another folder")
    try:
        return _previous_output(real, label, DUMP_MARKER, "graphopt dump folder")
    except OSError as e:
        raise GraphoptError(f"{label}: cannot read it ({e.strerror}); choose another folder") from None


def start_dump(path: Path, label: str) -> None:
    """Make ``path`` an empty dump folder: an earlier dump's files are deleted (only those)."""
    if check_dump_dir(path, label):
        remove_listed(path, DUMP_MARKER)
    try:
        path.mkdir(parents=True, exist_ok=True)
        _write_atomic(path / DUMP_MARKER, marker_text(path, DUMP_MARKER, "dump").encode())
    except OSError as e:
        raise GraphoptError(f"{label}: cannot write there ({e.strerror}); choose another folder") from None


def add_to_dump(path: Path, name: str, text: str, label: str) -> None:
    """Write ``name`` into a dump folder, listing it in the marker first."""
    try:
        data = json.loads((path / DUMP_MARKER).read_text())
        data["files"] = sorted({*data["files"], name})
        _write_atomic(path / DUMP_MARKER, (json.dumps(data, indent=1) + "\n").encode())
        (path / name).write_text(text)
    except (OSError, ValueError, KeyError) as e:
        why = e.strerror if isinstance(e, OSError) else "its marker changed"
        raise GraphoptError(f"{label}: cannot write {name} there ({why})") from None


# -- single files ----------------------------------------------------------------------------


def check_output_file(
    path: str | os.PathLike[str],
    label: str,
    accept: Callable[[Path], bool],
    what: str,
    keep: Iterable[str | os.PathLike[str]] = (),
) -> None:
    """Raise unless ``path`` may be written: it does not exist, or is a regular file that
    ``accept`` says is of the kind graphopt writes there (``what``, for the message), and
    is none of ``keep``."""
    given = Path(path)
    if given.is_symlink():
        raise GraphoptError(f"{label}: is a symbolic link; give the real file or choose another name")
    real = _resolved(given)
    for k in keep:
        if _resolved(Path(k)) == real:
            raise GraphoptError(f"{label}: is the input {k}; choose another file for the output")
    if not real.exists():
        _check_parent(real, label)
        return
    if real.is_dir():
        raise GraphoptError(f"{label}: is a folder; give a file name")
    if not real.is_file():
        raise GraphoptError(f"{label}: is not a regular file; give a file name")
    try:
        ok = accept(real)
    except OSError:
        ok = False
    if not ok:
        raise GraphoptError(f"{label}: exists and is not {what}; remove it or choose another name")
    if not os.access(real.parent, os.W_OK | os.X_OK):
        raise GraphoptError(f"{label}: cannot write in {real.parent} (permission denied); choose another path")


def _write_atomic(path: Path, data: bytes) -> None:
    write_file(path, lambda f: f.write(data))


def write_file(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """``write`` into a new file beside ``path`` (mode 0666 less the umask), then rename it
    over ``path``: a reader sees the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = _fresh_name(path, "")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_output_file(path: str | os.PathLike[str], label: str, write: Callable[[IO[bytes]], Any]) -> None:
    """write_file with an OS error as one line naming ``label``."""
    try:
        write_file(_resolved(Path(path)), write)
    except OSError as e:
        raise GraphoptError(f"{label}: cannot write it ({e.strerror}); choose another path") from None
