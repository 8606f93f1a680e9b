"""Load a BurstPolicy from YAML and check what the schema alone cannot: names against the catalog."""

from __future__ import annotations

import fnmatch
from typing import Any

from .catalog import Catalog, default_catalog
from .constants import POLICY_KIND
from .errors import InputError, InputIssue
from .loading import line_of, load_model_checked
from .policy import Allowlist, BurstPolicy


def load_policy(text: str, source: str = "<policy>", catalog: Catalog | None = None) -> BurstPolicy:
    """Validate policy YAML; raise InputError with every error (warnings are not raised)."""
    policy, issues = check_policy_text(text, source, catalog)
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        raise InputError(errors)
    return policy


def check_policy_text(
    text: str, source: str = "<policy>", catalog: Catalog | None = None
) -> tuple[BurstPolicy, list[InputIssue]]:
    """Return the policy and its semantic issues (errors and warnings); schema errors raise, together
    with the semantic errors of the rest of the document (a bad region beside a negative number)."""
    catalog = catalog or default_catalog()
    policy, _, issues = load_model_checked(BurstPolicy, text, source, POLICY_KIND,
                                           lambda p, lines: semantic_issues(p, catalog, source, lines))
    return policy, issues


def semantic_issues(
    policy: BurstPolicy, catalog: Catalog, source: str, lines: dict[Any, Any] | None = None
) -> list[InputIssue]:
    sm = policy.spec.sage_maker
    found = _Issues(source, lines or {})
    if sm.region not in catalog.regions():
        found.add(("spec", "sageMaker", "region"), f"no prices for region '{sm.region}'",
                  f"use one of {catalog.regions()}, or give spec.sageMaker.prices for every type you use")
    regional = catalog.in_region(sm.region)
    found.type_names, found.region = regional.names() or catalog.names(), sm.region
    for i, rule in enumerate(sm.instance_types):
        for j, name in enumerate(rule.instance_types):
            found.check_type(("spec", "sageMaker", "instanceTypes", i, "instanceTypes", j), name)
    for j, name in enumerate(sm.allowed_instance_types):
        found.check_type(("spec", "sageMaker", "allowedInstanceTypes", j), name)
    for name in sm.quotas:
        found.check_type(("spec", "sageMaker", "quotas", name), name)
    for name in sm.prices:
        found.check_type(("spec", "sageMaker", "prices", name), name)
    for ns, allow in policy.spec.allowlists.items():
        _check_allowlist(found, ns, allow)
    if not policy.spec.allowlists:
        found.add(("spec", "allowlists"), "no allowlists: no namespace may burst, every Job stays local",
                  "add an entry per namespace (or '*') with roleArns and s3Prefixes", "warning")
    if policy.spec.spot.enabled and policy.spec.spot.require_checkpoint is False:
        found.add(("spec", "spot", "requireCheckpoint"),
                  "spot without checkpoints restarts interrupted Jobs from scratch",
                  "keep requireCheckpoint: true unless your Jobs are short", "warning")
    return found.issues


class _Issues:
    """The issues found in one policy document, each with its path and line."""

    def __init__(self, source: str, lines: dict[Any, Any]):
        self.source, self.lines = source, lines
        self.issues: list[InputIssue] = []
        self.type_names: list[str] = []  # the SageMaker training types known in the region
        self.region = ""

    def add(self, path: tuple[str | int, ...], problem: str, fix: str, severity: str = "error") -> None:
        dotted = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[")
        self.issues.append(InputIssue(self.source, dotted, problem, fix, line_of(self.lines, path), severity))

    def check_type(self, path: tuple[str | int, ...], pattern: str) -> None:
        """An instance type or pattern must match a known training type."""
        if not any(fnmatch.fnmatchcase(n, pattern) for n in self.type_names):
            import difflib

            close = difflib.get_close_matches(pattern, self.type_names, n=1, cutoff=0.6)
            fix = f"did you mean '{close[0]}'?" if close else "see `spillway catalog` for the known types"
            self.add(path, f"'{pattern}' matches no SageMaker training type in {self.region}", fix)


def _check_allowlist(found: _Issues, ns: str, allow: Allowlist) -> None:
    for j, name in enumerate(allow.instance_types):
        found.check_type(("spec", "allowlists", ns, "instanceTypes", j), name)
    for j, arn in enumerate(allow.role_arns):
        if not arn.startswith("arn:aws") or ":role/" not in arn:
            found.add(("spec", "allowlists", ns, "roleArns", j), f"'{arn}' is not an IAM role ARN",
                      "write arn:aws:iam::<account>:role/<name>")
    for j, prefix in enumerate(allow.s3_prefixes):
        if not prefix.startswith("s3://") or len(prefix) <= len("s3://"):
            found.add(("spec", "allowlists", ns, "s3Prefixes", j), f"'{prefix}' is not an S3 URI",
                      "write s3://<bucket>/<prefix>/")
    if not allow.role_arns:
        found.add(("spec", "allowlists", ns, "roleArns"),
                  "no IAM role: Jobs here can burst only with a spillway.io/role-arn annotation "
                  "that is in this list, so none can", "list at least one role ARN", "warning")


def default_policy() -> BurstPolicy:
    """The embedded default: what `spillway policy show` prints with no file."""
    from importlib import resources

    text = resources.files("policies").joinpath("default.yaml").read_text()
    return load_policy(text, "policies/default.yaml")
