"""Input problems, reported all at once with the file, the field path, the line and the fix."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class InputIssue:
    source: str  # file name, or a label like "<job>"
    path: str  # YAML path, e.g. spec.budgets.namespaces.ml.dailyUsd
    problem: str  # what is wrong, including what was expected and what came
    fix: str = ""  # how to mend it
    line: int | None = None  # 1-based
    severity: str = "error"  # error | warning

    def render(self) -> str:
        where = self.source + (f":{self.line}" if self.line else "")
        # A command-line option is its own path; a file without a path is about the whole document.
        path = self.path or ("" if self.source.startswith("-") else "(document)")
        text = f"{where}: {self.severity}: {path + ': ' if path else ''}{self.problem}"
        return text + (f" (fix: {self.fix})" if self.fix else "")

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "line": self.line,
            "path": self.path,
            "severity": self.severity,
            "problem": self.problem,
            "fix": self.fix,
        }


@dataclass
class InputError(Exception):
    """Raised for broken input; carries every issue found, not just the first."""

    issues: list[InputIssue] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(i.render() for i in self.issues)

    @property
    def errors(self) -> list[InputIssue]:
        return [i for i in self.issues if i.severity == "error"]
