"""What publishing may read: regular files inside a folder, reached without following any link.

A run folder (or an evaluation report's folder) is untrusted input: a symbolic link in it may point at any
file of the machine, a link loop at itself, and a path written in a report (``"chart": "../../x"``) may
climb out of it. Everything :mod:`hf_forget.publish` copies goes through these helpers, which refuse all
three with one line (a :class:`~hf_forget.errors.ForgetInputError`) and open files with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from ..errors import ForgetInputError

__all__ = ["contained_file", "copy_regular_file", "regular_files", "write_text_atomically"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or other special file"


def regular_files(
    root: str | os.PathLike,
    *,
    skip: Callable[[str], bool] = lambda name: False,
    label: Callable[[str], str] = lambda relative: relative,
) -> list[str]:
    """The regular files under ``root`` (POSIX paths relative to it), never following a link.

    Entries whose name ``skip`` accepts are left out (with everything below them). A symbolic link, named
    pipe, socket or device anywhere else raises :class:`ForgetInputError` naming it as ``label(relative)``
    (the caller may redact a path that carries a forgotten name).
    """
    root = Path(root)
    found: list[str] = []

    def walk(folder: Path, prefix: str) -> None:
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if skip(entry.name):
                    continue
                relative = prefix + entry.name
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    walk(Path(entry.path), relative + "/")
                elif stat.S_ISREG(mode):
                    found.append(relative)
                else:
                    raise ForgetInputError(
                        f"{label(relative)} is {_kind(mode)}: only regular files inside the folder are published "
                        "and links are never followed; replace it with the file itself or move it out of the folder."
                    )

    walk(root, "")
    return found


def copy_regular_file(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy the regular file ``source`` to the new file ``target`` (normal permissions, no link followed)."""
    try:
        handle = os.open(source, os.O_RDONLY | _NOFOLLOW)
    except OSError as error:
        raise ForgetInputError(f"cannot read {os.path.basename(source)} ({error.strerror}): it changed while "
                               "publishing or is a link; run again.") from None  # fmt: skip
    with os.fdopen(handle, "rb") as reader:
        if not stat.S_ISREG(os.fstat(reader.fileno()).st_mode):
            raise ForgetInputError(f"{os.path.basename(source)} is not a regular file: it cannot be published.")
        with open(target, "xb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)


def contained_file(folder: str | os.PathLike, relative: object, what: str) -> Path | None:
    """``folder / relative`` when ``relative`` (a path read from a report) stays inside ``folder``.

    Returns ``None`` when no such file exists. An absolute path, a ``..`` step, a link on the way or a
    target that is not a regular file raises :class:`ForgetInputError` (``what`` says which entry it was;
    the path itself is not repeated: it came from a file and may carry anything).
    """
    if not isinstance(relative, str) or not relative.strip():
        raise ForgetInputError(f"{what} must be a file name relative to the report's folder.")
    pure = PurePosixPath(relative.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or os.path.isabs(relative):
        raise ForgetInputError(
            f"{what} points outside the report's folder: paths read from a report must stay inside its folder; "
            "fix the report."
        )
    current = Path(folder)
    for index, part in enumerate(pure.parts):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return None
        last = index == len(pure.parts) - 1
        if stat.S_ISLNK(mode):
            raise ForgetInputError(f"{what} is a symbolic link: links are never followed; put the file itself there.")
        if (last and not stat.S_ISREG(mode)) or (not last and not stat.S_ISDIR(mode)):
            raise ForgetInputError(f"{what} is not a regular file inside the report's folder; fix the report.")
    return current


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a sibling temporary file renamed into place (normal permissions)."""
    path = Path(path)
    for attempt in range(100):
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{attempt}.incomplete")
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - a hundred stale temporary files
        raise ForgetInputError(f"cannot create a temporary file next to {path.name}: remove the *.incomplete files.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
