"""The files a `spillway` command reads: every problem is an InputError naming the file and the fix."""

from __future__ import annotations

from pathlib import Path

from policies import BurstPolicy, InputError, InputIssue, default_policy, load_policy


def read_input(path: str) -> str:
    """The text of a file the user named."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise InputError([InputIssue(path, "", "file not found", "check the path")]) from None
    except IsADirectoryError:
        raise InputError([InputIssue(path, "", "is a directory", "name a YAML file")]) from None
    except UnicodeDecodeError:
        raise InputError([InputIssue(path, "", "not a text file", "name a YAML file")]) from None
    except OSError as exc:
        raise InputError([InputIssue(path, "", f"cannot read: {exc.strerror}", "check permissions")]) from None


def policy_from(path: str | None) -> BurstPolicy:
    """The BurstPolicy in a YAML file; no file: the default policy."""
    if path is None:
        return default_policy()
    return load_policy(read_input(path), path)
