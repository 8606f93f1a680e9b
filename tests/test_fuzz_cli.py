"""Every command, hostile arguments and files: an error that names the option or file, never a
traceback. Two sweeps:

- every numeric option of every command's parser gets hostile numbers (parsing only: a value that
  is accepted would start a server or a long run);
- every option or argument that reads or writes a file gets hostile files, and the command runs.
"""

from __future__ import annotations

import argparse
import gzip

import pytest

from scheduler.cli import build_parser, main

HOSTILE_NUMBERS = ["-1", "-0.5", "1e400", "-1e400", "nan", "inf", "x", "", "0x10", "1_0_"]


def subparsers(parser: argparse.ArgumentParser, prefix=()):
    """(command words, parser) for every command and sub-command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from subparsers(sub, (*prefix, name))


NUMERIC = [(words, action.option_strings[-1], action.type)
           for words, sub in subparsers(build_parser())
           for action in sub._actions
           if action.option_strings and action.type in (int, float) or
           (action.option_strings and callable(action.type) and action.type.__name__ == "parse")]


def test_every_numeric_option_is_checked_where_it_is_parsed():
    assert len(NUMERIC) >= 25, "the sweep lost the options it is meant to cover"
    plain = [(" ".join(words), option) for words, option, kind in NUMERIC if kind in (int, float)]
    # A plain int or float accepts -1, 1e400 or nan; each option says what range it takes instead.
    assert not plain, f"options parsed without a range: {plain}"


@pytest.mark.parametrize("words, option, kind", NUMERIC, ids=[f"{' '.join(w)} {o}" for w, o, _ in NUMERIC])
def test_hostile_numbers_are_refused_by_the_parser(words, option, kind):
    for value in HOSTILE_NUMBERS:
        try:
            parsed = kind(value)
        except argparse.ArgumentTypeError as exc:
            assert str(exc), (option, value)  # argparse prints it after the option's name
            continue
        assert parsed == parsed and abs(parsed) != float("inf"), f"{option} {value!r} accepted as {parsed}"
        # -1 is a legal value only where it means "off" (--metrics-port, --webhook-port, --kubelet-port).
        assert parsed >= 0 or (option in ("--metrics-port", "--webhook-port", "--kubelet-port") and parsed == -1), \
            f"{option} {value!r} accepted"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    files = {
        "missing": d / "missing.yaml",
        "directory": d,
        "binary": d / "binary.csv",
        "empty": d / "empty.yaml",
        "recursive-yaml": d / "recursive.yaml",
        "nested-yaml": d / "nested.yaml",
        "not-yaml": d / "not-yaml.yaml",
        "ragged-csv": d / "ragged.csv",
        "nul-csv": d / "nul.csv",
        "bad-gzip": d / "bad.csv.gz",
        "list-yaml": d / "list.yaml",
    }
    files["binary"].write_bytes(bytes(range(256)) * 4)
    files["empty"].write_text("")
    files["recursive-yaml"].write_text("a: &a\n  b: *a\nkind: BurstPolicy\n")
    files["nested-yaml"].write_text("[" * 5000 + "]" * 5000)
    files["not-yaml"].write_text("key: [unclosed\n  - :\n")
    files["ragged-csv"].write_text("arrival_s,gpus,duration_s\n0,1,60,7\n1,1\n")
    files["nul-csv"].write_bytes(b"arrival_s,gpus,duration_s\n0,1,6\x000\n")
    files["bad-gzip"].write_bytes(b"this is not gzip")
    files["list-yaml"].write_text("- 1\n- 2\n")
    return {k: str(v) for k, v in files.items()}


UNWRITABLE = ["/proc/spillway-test/out", "/dev/null/x"]

# What each command reads or writes, as (argv with {} where the file goes). The runs are small: the
# SB-1 trace or 20 Philly Jobs.
READERS = [
    ["sim", "--no-progress", "--max-jobs", "20", "--policy", "{}"],
    ["sim", "--no-progress", "--max-jobs", "20", "--compare", "no-wait", "{}"],
    ["sim", "--no-progress", "--trace", "csv:{}"],
    ["sim", "--no-progress", "--trace", "alibaba:{}"],
    ["sim", "--no-progress", "--max-jobs", "20", "--cluster", "openb:{}"],
    ["sim", "--no-progress", "--max-jobs", "20", "--cluster", "{}.yaml"],
    ["tune", "--no-progress", "--max-jobs", "20", "--param", "local.maxWaitSeconds=0", "--policy", "{}"],
    ["explain", "{}"],
    ["explain", "--policy", "{}"],
    ["explain", "--cluster", "{}"],
    ["plan", "{}"],
    ["plan", "--cluster", "{}"],
    ["policy", "validate", "{}"],
    ["policy", "show", "{}"],
    ["demo", "--policy", "{}"],
]
WRITERS = [
    ["sim", "--no-progress", "--scenario", "sb1", "--baseline", "no-wait", "--jobs-csv", "{}"],
    ["sim", "--no-progress", "--max-jobs", "20", "--plot", "{}"],
    ["tune", "--no-progress", "--max-jobs", "20", "--param", "local.maxWaitSeconds=0", "--write", "{}"],
    ["sandbox", "up", "--kubeconfig", "{}"],
]
HOSTILE_VALUES = [
    ["sim", "--trace", "nonsense"], ["sim", "--weeks", "3-x"], ["sim", "--weeks", "99-99"],
    ["sim", "--cluster", "0x8"], ["sim", "--cluster", "4x8:NVIDIA-NOPE"], ["sim", "--cluster", "axb"],
    ["sim", "--cluster", "-4x8"], ["sim", "--cluster", ""], ["sim", "--spot-trace", "no-such-trace"],
    ["sim", "--compare", "no-such-policy"], ["sim", "--baseline", "nope"],
    ["tune", "--goal", "happiness>=1"], ["tune", "--param", "no.such.key=1"], ["tune", "--param", "x"],
    ["tune", "--param", "local.maxWaitSeconds=[unclosed"], ["tune", "--param", "local.maxWaitSeconds=-1"],
    ["explain", "--now", "yesterday"], ["plan", "--now", "2026-13-45T99:00:00Z"],
    ["sandbox", "up", "--nodes", "0x8"], ["sandbox", "up", "--nodes", "4x8:NOPE"],
    ["sandbox", "up", "--nodes", "many"], ["catalog", "--region", "mars-1"],
]


def outcome(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own error exit
        code = exc.code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    # `policy validate` reports on stdout (the report is its output); every other error goes to stderr.
    return code, captured.err + captured.out if argv[:2] == ["policy", "validate"] else captured.err


def small(argv):
    """Keep every run small: SB-1 or 20 Philly Jobs."""
    if argv[0] in ("sim", "tune") and "--max-jobs" not in argv and "--scenario" not in argv and \
            not any(a.startswith("--trace") for a in argv):
        argv = [*argv, "--max-jobs", "20", "--no-progress"]
    return argv


@pytest.mark.slow
@pytest.mark.parametrize("template", READERS, ids=lambda t: " ".join(t))
def test_hostile_files_are_reported_not_raised(capsys, hostile, template):
    for kind, path in hostile.items():
        argv = [a.replace("{}", path) for a in template]
        code, err = outcome(capsys, argv)
        assert code != 0, (kind, argv)
        assert err.strip(), f"{kind}: exit {code} without a word on stderr"


@pytest.mark.slow
@pytest.mark.parametrize("template", WRITERS, ids=lambda t: " ".join(t))
def test_unwritable_outputs_are_reported_not_raised(capsys, hostile, template):
    targets = [*UNWRITABLE, hostile["binary"] if "--plot" in template else hostile["directory"]]
    for path in targets:
        code, err = outcome(capsys, [a.replace("{}", path) for a in template])
        assert code != 0 and path.split("/")[1] in err, (path, err)


@pytest.mark.slow
@pytest.mark.parametrize("argv", HOSTILE_VALUES, ids=lambda a: " ".join(a))
def test_hostile_values_are_reported_not_raised(capsys, argv):
    code, err = outcome(capsys, small(argv))
    assert code != 0 and err.strip(), argv


def test_a_gzip_trace_cut_short_is_reported(capsys, tmp_path):
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(b"arrival_s,gpus,duration_s\n" + b"0,1,60\n" * 1000)[:60])
    code, err = outcome(capsys, ["sim", "--no-progress", "--trace", f"csv:{path}"])
    assert code == 1 and "cut.csv.gz" in err
