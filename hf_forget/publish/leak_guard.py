"""Refuse to publish anything that still carries a forgotten name.

A privacy tool that leaks the list of people it removed defeats itself, so every file we are about to
write or upload is scanned first: its path, its bytes and what those bytes decode to. A name counts as
found in any letter case and any Unicode form: NFC or NFD, compatibility forms (NFKC), with its accents
stripped (``José`` as ``Jose``), with other separators between its parts (``jane_doe``, ``Jane-Doe``) or
with none (``JaneDoe``).

How a file is read:

* ``*.safetensors``: only the JSON header (tensor names, dtypes, ``__metadata__``), never the tensors;
* ``torch.save`` zip archives (``*.bin``, ``*.pt``, ``*.pth``): each member's name and content except
  raw tensor storages (``data/0``, ...), which are numbers; a PNG: its text chunks, not its pixels; a
  gzip file: its decompressed content;
* anything else, in overlapping chunks: as UTF-8, Latin-1 and UTF-16 (both byte orders, both
  alignments), after undoing ``\\uXXXX`` / ``\\xXX`` escapes (``json.dumps(ensure_ascii=True)``, pickle
  protocol 0) and URL percent-encoding. Pickles (``training_args.bin``, optimizer and RNG states) keep
  their strings as UTF-8 bytes, so nothing is unpickled: unpickling untrusted files runs code.

Links are never followed (their own path and the path they point to are checked); named pipes, sockets
and devices are judged by their path alone. A hit raises :class:`NameLeakError`, whose message names the
file but never the name.

Matching is deliberately conservative: a name is searched as a substring, so a short single-word name
could also match inside an unrelated word and refuse a clean push (only names shorter than five
letters must stand alone). A false refusal costs a look at the file; a false pass publishes a person.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import stat
import struct
import unicodedata
import urllib.parse
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub.utils import are_progress_bars_disabled
from tqdm.auto import tqdm

from ..errors import ForgetInputError

__all__ = ["NameLeakError", "NamePatterns", "find_leaks", "scan_tree", "text_contains_names"]

CHUNK_BYTES = 8 * 1024 * 1024
_SHORT_NAME = 5  # names with fewer letters than this must not be glued to other letters

# Letters that Unicode does not decompose into a base letter plus an accent.
_FOLD = str.maketrans(
    {
        "ø": "o", "đ": "d", "ð": "d", "ł": "l", "ħ": "h", "ı": "i", "ŀ": "l", "ŧ": "t", "þ": "th",
        "æ": "ae", "œ": "oe", "ß": "ss", "ĸ": "k", "ŋ": "n",
    }
)  # fmt: skip
_SEPARATORS = re.compile(r"[\W_]+")
_MARKS = re.compile("[\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u064b-\u065f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})|\\x([0-9a-fA-F]{2})")


class NameLeakError(ForgetInputError):
    """A staged file (or a path, repo id or commit message) contains a forgotten name."""

    def __init__(self, where: list[str]):
        self.where = list(where)
        listed = ", ".join(self.where[:10]) + (f" and {len(self.where) - 10} more" if len(self.where) > 10 else "")
        super().__init__(
            f"refusing to publish: a forgotten name appears in {listed}. Remove it from there (or leave "
            "the file out of the output directory) and run again; nothing was written or uploaded."
        )


def skeleton(text: str) -> str:
    """Fold ``text`` to what we compare: casefolded, compatibility-decomposed, accents and marks dropped,
    a few undecomposable letters spelled out, and every run of non-letters turned into one space."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = _MARKS.sub("", text)
    text = unicodedata.normalize("NFKC", text.translate(_FOLD)).casefold()
    return _SEPARATORS.sub(" ", text)


def _unescape(text: str) -> str:
    def replace(match: re.Match) -> str:
        code = int(next(group for group in match.groups() if group), 16)
        return chr(code) if code <= 0x10FFFF else match.group(0)

    text = _ESCAPE.sub(replace, text)
    if "%" in text:
        text = urllib.parse.unquote(text, errors="replace")
    return text


@dataclass(frozen=True)
class NamePatterns:
    """The forgotten names compiled once into a search over folded text. Holds no name in clear."""

    regex: re.Pattern | None
    max_bytes: int

    @classmethod
    def from_names(cls, names: Iterable[str]) -> NamePatterns:
        alternatives: set[str] = set()
        max_chars = 0
        for name in names:
            if not isinstance(name, str):
                raise ForgetInputError(f"names must be strings, got {type(name).__name__}.")
            folded = skeleton(name).strip()
            if not folded:
                continue
            max_chars = max(max_chars, len(name), len(folded))
            compact = folded.replace(" ", "")
            forms = {folded, compact} if " " in folded and len(compact) >= 6 else {folded}
            for form in forms:
                # Inside folded text, the parts of a name are separated by exactly one space.
                pattern = re.escape(form)
                if len(compact) < _SHORT_NAME:
                    pattern = rf"(?<![^\W\d_]){pattern}(?![^\W\d_])"
                alternatives.add(pattern)
        if not alternatives:
            return cls(regex=None, max_bytes=0)
        regex = re.compile("|".join(sorted(alternatives, key=len, reverse=True)))
        # Worst case a character is 4 UTF-8 bytes, and there may be escapes around each one.
        return cls(regex=regex, max_bytes=max_chars * 12 + 64)

    def search(self, text: str) -> bool:
        if self.regex is None:
            return False
        if self.regex.search(skeleton(text)):
            return True
        return ("\\" in text or "%" in text) and bool(self.regex.search(skeleton(_unescape(text))))

    def search_bytes(self, data: bytes) -> bool:
        if self.regex is None or not data:
            return False
        views = [("utf-8", 0)] if data.isascii() else [("utf-8", 0), ("latin-1", 0)]
        views += [("utf-16-le", 0), ("utf-16-le", 1), ("utf-16-be", 0), ("utf-16-be", 1)]
        for encoding, start in views:
            if self.search(data[start:].decode(encoding, errors="replace")):
                return True
        return False


def text_contains_names(text: str, names: Iterable[str] | NamePatterns) -> bool:
    """Whether ``text`` (a repo id, a commit message, a card) contains one of ``names`` in any form."""
    patterns = names if isinstance(names, NamePatterns) else NamePatterns.from_names(names)
    return patterns.search(text)


def _chunks(path: Path, overlap: int) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        previous = b""
        while True:
            block = handle.read(CHUNK_BYTES)
            if not block:
                if not previous:
                    yield b""
                return
            yield previous + block
            previous = block[-overlap:] if overlap else b""


def _safetensors_header(path: Path) -> bytes:
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return head
        (length,) = struct.unpack("<Q", head)
        if length > os.path.getsize(path):  # not a safetensors file after all: scan it whole
            return b""
        return handle.read(length)


_TENSOR_STORAGE = re.compile(r"(^|/)data/\d+$")


def _zip_contains_names(path: Path, patterns: NamePatterns) -> bool:
    """``torch.save`` archives: every member's name and content except raw tensor storages."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if patterns.search(info.filename):
                return True
            if info.is_dir() or _TENSOR_STORAGE.search(info.filename):
                continue
            with archive.open(info) as member:
                previous = b""
                while block := member.read(CHUNK_BYTES):
                    if patterns.search_bytes(previous + block):
                        return True
                    previous = block[-patterns.max_bytes :]
    return False


def _png_contains_names(path: Path, patterns: NamePatterns) -> bool:
    """PNG images: the text chunks (``tEXt``, ``zTXt``, ``iTXt``); pixels cannot be scanned."""
    with open(path, "rb") as handle:
        handle.read(8)
        while header := handle.read(8):
            if len(header) < 8:
                return False
            length, kind = struct.unpack(">I4s", header)
            data = handle.read(length)
            handle.read(4)  # CRC
            if kind in (b"tEXt", b"iTXt", b"zTXt"):
                keyword, _, rest = data.partition(b"\x00")
                texts = [keyword, rest]
                for start in range(len(rest)):  # compressed text: try to inflate from each offset
                    if kind == b"tEXt" or start > len(rest) - 2:
                        break
                    try:
                        texts.append(zlib.decompress(rest[start:]))
                        break
                    except zlib.error:
                        continue
                if any(patterns.search_bytes(text) for text in texts):
                    return True
            if kind == b"IEND":
                return False
    return False


def file_contains_names(path: str | os.PathLike, patterns: NamePatterns) -> bool:
    """Whether the file at ``path`` carries one of the names (see the module docstring for how)."""
    path = Path(path)
    if patterns.regex is None:
        return False
    with open(path, "rb") as handle:
        magic = handle.read(8)
    if magic.startswith(b"\x1f\x8b"):  # gzip (compressed logs, tarballs): scan the decompressed stream
        try:
            with gzip.open(path, "rb") as stream:
                previous = b""
                while block := stream.read(CHUNK_BYTES):
                    if patterns.search_bytes(previous + block):
                        return True
                    previous = block[-patterns.max_bytes :]
            return False
        except (OSError, EOFError, zlib.error):
            pass  # not really gzip: scan the raw bytes below
    if magic == b"\x89PNG\r\n\x1a\n":
        return _png_contains_names(path, patterns)
    if magic.startswith(b"PK\x03\x04") and zipfile.is_zipfile(path):
        try:
            return _zip_contains_names(path, patterns)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError):
            pass  # unreadable archive (encrypted, exotic compression): scan its raw bytes below
    if path.suffix == ".safetensors":
        header = _safetensors_header(path)
        if header:
            try:
                text = json.dumps(json.loads(header), ensure_ascii=False)
            except (UnicodeDecodeError, json.JSONDecodeError):
                text = ""
            return patterns.search(text) or patterns.search_bytes(header)
    return any(patterns.search_bytes(chunk) for chunk in _chunks(path, patterns.max_bytes))


def _entries(root: Path) -> list[Path]:
    """Every file, link and special file under ``root``; links to folders are not entered."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):  # os.walk does not follow links to folders
        folder = Path(dirpath)
        found += [folder / name for name in filenames]
        found += [folder / name for name in dirnames if (folder / name).is_symlink()]
    return sorted(found)


def find_leaks(root: str | os.PathLike, names: Iterable[str] | NamePatterns) -> list[str]:
    """The paths (relative to ``root``, POSIX style) of the files whose path or content carries a name.

    Links are never followed: a link counts as leaking when its path or the path it points to carries a
    name. Named pipes, sockets and devices are judged by their path only (reading them could block).
    """
    patterns = names if isinstance(names, NamePatterns) else NamePatterns.from_names(names)
    root = Path(root)
    leaks: list[str] = []
    files = _entries(root)
    for path in tqdm(files, desc="leak scan", unit="file", disable=len(files) < 50 or are_progress_bars_disabled()):
        relative = path.relative_to(root).as_posix()
        mode = path.lstat().st_mode
        if patterns.search(relative):
            # Do not repeat a leaking path: point at the deepest folder whose path is clean.
            parent = path.parent
            while parent != root and patterns.search(parent.relative_to(root).as_posix()):
                parent = parent.parent
            where = parent.relative_to(root).as_posix()
            label = f"the name of a file or folder in {'the top folder' if where == '.' else where + '/'}"
            if label not in leaks:
                leaks.append(label)
        elif stat.S_ISLNK(mode):
            if patterns.search(os.readlink(path)):
                leaks.append(relative)
        elif stat.S_ISREG(mode) and file_contains_names(path, patterns):
            leaks.append(relative)
    return leaks


def scan_tree(root: str | os.PathLike, names: Iterable[str] | NamePatterns, *, extra_texts: dict[str, str] | None = None) -> None:
    """Raise :class:`NameLeakError` if any file under ``root`` (or any of ``extra_texts``, e.g. the repo
    id and the commit message, keyed by what they are) carries one of ``names``."""
    patterns = names if isinstance(names, NamePatterns) else NamePatterns.from_names(names)
    leaks = [label for label, text in (extra_texts or {}).items() if patterns.search(text)]
    leaks += find_leaks(root, patterns)
    if leaks:
        raise NameLeakError(leaks)
