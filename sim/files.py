"""Reading a user's files and writing where a user asked: every problem is an InputError that names
the file or option and the fix, never a traceback."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from policies import InputError, InputIssue


def text_lines(path: Path, what: str):
    """The lines of a text file, gzip or plain. A file that is missing, unreadable, not gzip after
    all, or not UTF-8 text is an InputError naming it, never a traceback."""
    def problem(text: str, fix: str = f"give {what}") -> InputError:
        return InputError([InputIssue(str(path), "", text, fix)])

    if not path.exists():
        raise problem("no such file")
    if path.is_dir():
        raise problem("is a directory, not a file")
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        # utf-8-sig: a leading byte-order mark (Excel saves CSV with one) is not part of the header.
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            yield from fh
    except UnicodeDecodeError as exc:
        raise problem(f"not UTF-8 text (byte {exc.start} cannot be decoded; a binary file?)") from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise problem(f"cannot be read: {getattr(exc, 'strerror', None) or exc}") from None


def read_text(path: Path, what: str) -> str:
    return "".join(text_lines(path, what))


def check_writable_file(path: Path, option: str) -> None:
    """Before a long run: the file that `option` names can be written (its folder exists and is ours)."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError([InputIssue(option, "", f"{path} is a directory", "name a file to write")])
    if not folder.is_dir():
        raise InputError([InputIssue(option, "", f"the folder {folder} does not exist", "create it, or name another")])
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError([InputIssue(option, "", f"{path} cannot be written (permission denied)",
                                     "name a file in a folder you can write")])


def make_folder(path: Path, option: str) -> None:
    """Create the folder that `option` names (and its parents), or say why it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError([InputIssue(option, "", f"{path} is a file, not a folder", "name a folder")]) from None
    except OSError as exc:
        raise InputError([InputIssue(option, "", f"cannot create {path}: {exc.strerror}",
                                     "name a folder you can write")]) from None
    if not os.access(path, os.W_OK):
        raise InputError([InputIssue(option, "", f"{path} cannot be written (permission denied)",
                                     "name a folder you can write")])


def write_text(path: Path, text: str, option: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        raise InputError([InputIssue(option, "", f"cannot write {path}: {exc.strerror or exc}",
                                     "name a file in a folder you can write")]) from None
