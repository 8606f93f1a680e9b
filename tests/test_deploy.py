"""deploy/: the manifests build with kustomize, validate offline against the Kubernetes schemas,
grant exactly what the controller calls, and run the command the CLI accepts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from policies import check_policy_text
from scheduler.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
KUBECTL = Path(sys.executable).parent / "kubectl"
K8S_VERSION = "1.33"

# Every API call scheduler/kube.py makes (and the leader election's), as RBAC sees it.
CLUSTER_CALLS = {("batch", "jobs", v) for v in ("get", "list", "watch", "patch")} | {
    ("batch", "jobs/finalizers", "update"),  # blockOwnerDeletion on a TrainingJob (tests/real/test_bursts.py)
    ("", "pods", "list"), ("", "pods", "watch"), ("", "nodes", "list"), ("", "events", "create"),
    # the virtual node (scheduler/virtual_node.py) and its pods' agent (scheduler/controller.py)
    ("", "nodes", "get"), ("", "nodes", "create"), ("", "nodes", "patch"), ("", "nodes/status", "patch"),
    ("", "pods/status", "patch"), ("", "pods", "delete"),
    *{("sagemaker.services.k8s.aws", "trainingjobs", v) for v in ("create", "list", "delete")},
    *{("sagemaker.aws.amazon.com", "trainingjobs", v) for v in ("create", "list", "delete")},
    # batch transform (scheduler/transform_burst.py)
    *{("sagemaker.services.k8s.aws", "transformjobs", v) for v in ("create", "list", "delete")},
    *{("sagemaker.aws.amazon.com", "batchtransformjobs", v) for v in ("create", "list", "delete")},
    ("sagemaker.services.k8s.aws", "models", "create"),
    ("", "configmaps", "get"),  # a sweep's tuning spec in a ConfigMap (scheduler/trial_pods.tuning_config_maps)
    ("", "pods/log", "get"),  # a local Bayesian trial's objective (scheduler/trial_history.py)
    # hyperparameter tuning (scheduler/tuning_burst.py)
    *{(group, "hyperparametertuningjobs", v) for group in ("sagemaker.services.k8s.aws", "sagemaker.aws.amazon.com")
      for v in ("create", "list", "delete")},
}
NAMESPACE_CALLS = {("", "configmaps", v) for v in ("get", "list", "create", "update", "delete")} | {
    ("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")}
NODE_LEASE_CALLS = {("coordination.k8s.io", "leases", v) for v in ("get", "create", "patch")}  # its heartbeat


def build(path: str) -> list[dict]:
    out = subprocess.run([str(KUBECTL), "kustomize", str(ROOT / path)], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def granted(rules: list[dict]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


@pytest.mark.parametrize("path", ["deploy/base", "deploy/overlays/eks"])
def test_every_manifest_validates_strictly(path):
    docs = build(path)
    assert {d["kind"] for d in docs} == {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                                         "RoleBinding", "Deployment", "Service", "ConfigMap"}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_rbac_grants_what_the_controller_calls_and_nothing_more():
    built = build("deploy/base")
    docs = {d["kind"]: d for d in built if d["metadata"].get("namespace") != "kube-node-lease"}
    # Beyond the calls made: get and watch to read what is listed, and patch for Event counts.
    spare = {("", "pods", "get"), ("", "nodes", "watch"), ("", "events", "patch"),
             ("sagemaker.services.k8s.aws", "trainingjobs", "watch"), ("sagemaker.aws.amazon.com", "trainingjobs", "watch"),
             ("sagemaker.services.k8s.aws", "transformjobs", "watch"),
             ("sagemaker.aws.amazon.com", "batchtransformjobs", "watch"),
             ("sagemaker.services.k8s.aws", "hyperparametertuningjobs", "watch"),
             ("sagemaker.aws.amazon.com", "hyperparametertuningjobs", "watch")}
    assert granted(docs["ClusterRole"]["rules"]) - spare == CLUSTER_CALLS
    assert granted(docs["Role"]["rules"]) == NAMESPACE_CALLS
    assert docs["Role"]["metadata"]["namespace"] == "spillway-system"
    [lease_role] = [d for d in built if d["kind"] == "Role" and d["metadata"]["namespace"] == "kube-node-lease"]
    assert granted(lease_role["rules"]) == NODE_LEASE_CALLS
    [named] = [r for r in lease_role["rules"] if "get" in r["verbs"]]
    assert named["resourceNames"] == ["spillway-sagemaker"], "it renews its own Lease, no other node's"
    binding = docs["ClusterRoleBinding"]["subjects"][0]
    assert (binding["name"], binding["namespace"]) == (docs["ServiceAccount"]["metadata"]["name"], "spillway-system")


def test_the_deployment_runs_two_replicas_of_a_command_the_cli_accepts():
    docs = {d["kind"]: d for d in build("deploy/overlays/eks")}
    deployment = docs["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    [ctr] = pod["containers"]
    assert ctr["image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/spillway:0.1.0"
    args = [a.replace("$(POD_NAMESPACE)", "spillway-system").replace("$(POD_NAME)", "pod-0") for a in ctr["args"]]
    parsed = build_parser().parse_args(args)
    assert (parsed.namespace, parsed.leader_elect, parsed.metrics_port) == ("spillway-system", True, 8080)
    assert ctr["readinessProbe"]["httpGet"]["path"] == "/readyz" and ctr["livenessProbe"]["httpGet"]["path"] == "/healthz"
    [volume] = pod["volumes"]
    config_map = docs["ConfigMap"]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]  # kustomize's hashed name
    policy_text = config_map["data"]["policy.yaml"]
    assert parsed.policy == "/etc/spillway/policy.yaml"
    _, issues = check_policy_text(policy_text, "deploy/base/policy.yaml")
    # Shipped safe: no namespace may burst until its allowlist is filled in, and the policy says so.
    assert [(i.severity, i.path) for i in issues] == [("warning", "spec.allowlists")]
    assert docs["ServiceAccount"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")


def test_the_controller_starts_without_the_simulators_dependencies():
    # As in the controller image: the 'sim' extra and the test tools are not installed (tqdm is:
    # Optuna, which chooses a Bayesian sweep's trials, needs it).
    absent = ["moto", "flask", "flask_cors", "matplotlib", "jsonschema", "jsonpatch", "werkzeug",
              "kubernetes_validate", "pytest", "hypothesis"]
    code = f"""
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {absent!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, Absent())
import scheduler.cli, scheduler.controller, scheduler.kube, scheduler.sagemaker, scheduler.prometheus
import scheduler.metrics
args = scheduler.cli.build_parser().parse_args(['run', '--once', '--no-sagemaker'])
print(args.run.__name__)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "cmd_run", out.stderr[-2000:]


def test_the_webhook_overlay_wires_service_certificate_and_controller_together():
    from scheduler.trial_pods import TRIAL_LABEL
    from scheduler.webhook import MUTATE_PATH, MUTATE_POD_PATH, VALIDATE_PATH

    docs = build("deploy/overlays/webhook")
    for doc in docs:
        if not doc["apiVersion"].startswith("cert-manager.io/"):  # CRs: kubernetes-validate knows no schema
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    service = by[("Service", "spillway-webhook")]
    deployment = by[("Deployment", "spillway-controller")]
    pod = deployment["spec"]["template"]
    assert all(pod["metadata"]["labels"].get(k) == v for k, v in service["spec"]["selector"].items())
    [ctr] = pod["spec"]["containers"]
    port = {p["name"]: p["containerPort"] for p in ctr["ports"]}[service["spec"]["ports"][0]["targetPort"]]
    parsed = build_parser().parse_args([a.replace("$(POD_NAMESPACE)", "spillway-system").replace(
        "$(POD_NAME)", "pod-0") for a in ctr["args"]])
    assert parsed.webhook_port == port == 9443
    mounts = {m["name"]: m["mountPath"] for m in ctr["volumeMounts"]}
    secret = {v["name"]: v.get("secret", {}).get("secretName") for v in pod["spec"]["volumes"]}
    certificate = by[("Certificate", "spillway-webhook")]
    assert mounts["webhook-certs"] == parsed.webhook_cert_dir and secret["webhook-certs"] == certificate["spec"][
        "secretName"]
    assert "spillway-webhook.spillway-system.svc" in certificate["spec"]["dnsNames"]
    paths = {}
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        config = by[(kind, "spillway")]
        assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "spillway-system/spillway-webhook"
        for hook in config["webhooks"]:
            client = hook["clientConfig"]["service"]
            assert (client["name"], client["namespace"], client["port"]) == ("spillway-webhook", "spillway-system", 443)
            assert hook["sideEffects"] == "None" and hook["failurePolicy"] == "Fail"
            [expr] = hook["namespaceSelector"]["matchExpressions"]
            assert expr["operator"] == "NotIn" and set(expr["values"]) == {"kube-system", "spillway-system"}
            [rule] = hook["rules"]
            paths[hook["name"]] = (kind, client["path"], rule["resources"], rule["operations"],
                                   hook.get("objectSelector"))
    assert paths == {
        "suspend.jobs.spillway.io": ("MutatingWebhookConfiguration", MUTATE_PATH, ["jobs"], ["CREATE"], None),
        # only a sweep's trial pods, which the Job webhook labels: no other pod waits on Spillway
        "trials.pods.spillway.io": ("MutatingWebhookConfiguration", MUTATE_POD_PATH, ["pods"], ["CREATE"],
                                    {"matchLabels": {TRIAL_LABEL: "true"}}),
        "annotations.jobs.spillway.io": ("ValidatingWebhookConfiguration", VALIDATE_PATH, ["jobs"],
                                         ["CREATE", "UPDATE"], None)}


KUEUE_CALLS = {("kueue.x-k8s.io", "admissionchecks", "list"), ("kueue.x-k8s.io", "admissionchecks/status", "patch"),
               ("kueue.x-k8s.io", "workloads", "get"), ("kueue.x-k8s.io", "workloads", "list"),
               ("kueue.x-k8s.io", "workloads/status", "patch")}  # scheduler/kueue.py


def test_deploy_kueue_makes_spillway_the_check_of_the_sagemaker_flavor_with_just_the_rbac_it_needs():
    docs = build("deploy/kueue")
    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    [role] = by_kind["ClusterRole"]
    assert granted(role["rules"]) == KUEUE_CALLS
    [binding] = by_kind["ClusterRoleBinding"]
    assert (binding["subjects"][0]["name"], binding["subjects"][0]["namespace"]) == ("spillway-controller",
                                                                                     "spillway-system")
    [check] = by_kind["AdmissionCheck"]
    assert check["spec"]["controllerName"] == "spillway.io/sagemaker-burst"
    flavor = next(f for f in by_kind["ResourceFlavor"] if f["metadata"]["name"] == "sagemaker")
    assert flavor["spec"]["nodeLabels"] == {"spillway.io/virtual-node": "true"}
    assert flavor["spec"]["tolerations"] == [{"key": "spillway.io/sagemaker", "operator": "Exists",
                                              "effect": "NoSchedule"}]
    [queue] = by_kind["ClusterQueue"]
    assert queue["spec"]["admissionChecksStrategy"]["admissionChecks"] == [
        {"name": check["metadata"]["name"], "onFlavors": ["sagemaker"]}]
