"""The steps of a burst that depend on what it runs as on SageMaker, for the kinds beyond training.

The controller follows every burst through one ledger and one cycle; a training burst's steps are
its own. A batch transform burst (scheduler.transform_burst) and a hyperparameter tuning burst
(scheduler.tuning_burst) each bring one KindSteps: how it is named, sent, read back in
DescribeTrainingJob's terms (so status, cost, Events and the virtual node's pods come from one
path), stopped, priced, and what its end writes on the Job. The defaults here are what a kind
does when it has nothing special to do.
"""

from __future__ import annotations

from typing import Any

from policies.decide import ACK_API_VERSION, LEGACY_API_VERSION
from policies.model import CloudLaunch, EmitTarget, InstanceType, JobRequest, SageMakerKind

from .kube import Kube, KubeError
from .node_agent import Shown
from .sagemaker import SageMaker

API_VERSIONS = {EmitTarget.ACK: ACK_API_VERSION, EmitTarget.LEGACY: LEGACY_API_VERSION}


class KindSteps:
    kind: SageMakerKind
    plurals: dict[EmitTarget, str]  # its job's custom resource, per target emitted as one
    # Whether a new pod of a Job whose burst failed (backoffLimit) relaunches it. A tuning job
    # retries its own trials, so its Job's new pods are shown the failure instead.
    retried_by_backoff_limit = True

    def job_name(self, job: JobRequest) -> str:
        raise NotImplementedError

    def send(self, kube: Kube, sagemaker: SageMaker | None, job: JobRequest, launch: CloudLaunch, name: str,
             target: EmitTarget) -> str:
        """Create the job (or its resource) once; the ARN when SageMaker gave one."""
        raise NotImplementedError

    def stop(self, kube: Kube, sagemaker: SageMaker | None, namespace: str, name: str, target: EmitTarget) -> None:
        raise NotImplementedError

    def described(self, sagemaker: SageMaker, name: str) -> dict[str, Any] | None:
        """What SageMaker says of the job, in DescribeTrainingJob's terms; None while it does not exist."""
        raise NotImplementedError

    def followed_resource(self, cr: dict[str, Any]) -> dict[str, Any]:
        """The job's resource status in the same terms, when SageMaker cannot be asked (no billing
        figures there: the controller then charges the committed figure once it ends)."""
        raise NotImplementedError

    def cost(self, launch: CloudLaunch, itype: InstanceType, described: dict[str, Any], now: float) -> float | None:
        """Dollars billed so far; None when nothing is known to be billed yet."""
        raise NotImplementedError

    def past_runtime_cap(self, launch: CloudLaunch, described: dict[str, Any], now: float) -> bool:
        """A job that ran past the launch's cap, which SageMaker would not stop by itself."""
        return False

    def ended(self, sagemaker: SageMaker | None, name: str, target: EmitTarget) -> None:
        """Clean up after the job ended, once the ledger booked it (best effort)."""

    def outcome_annotations(self, described: dict[str, Any]) -> dict[str, str]:
        """What the job's end writes on the Job beyond its status and cost."""
        return {}

    def pod_shown(self, show: Shown, pod: dict[str, Any], described: dict[str, Any] | None) -> Shown:
        """What one of the Job's pods on the virtual node shows, given what all of them show."""
        return show

    def logged(self, sagemaker: SageMaker | None, names: list[str]) -> tuple[list[str], str]:
        """The SageMaker jobs whose CloudWatch logs are the burst's (kubectl logs, spillway logs), in
        order, and how their headers name them."""
        return list(names), self.kind.job_words

    def list_resources(self, kube: Kube, targets: set[EmitTarget]) -> dict[tuple[str, str, str], dict]:
        """The job resources of the emit targets in use, by (api version, namespace, name)."""
        out = {}
        for target in targets - {EmitTarget.API}:
            for cr in kube.list_custom(API_VERSIONS[target], self.plurals[target]):
                out[(API_VERSIONS[target], cr["metadata"]["namespace"], cr["metadata"]["name"])] = cr
        return out


def create_once(kube: Kube, resource: dict, plural: str) -> None:
    """Create a resource; one there already under its name was created before a crash."""
    try:
        kube.create_custom(resource, plural)
    except KubeError as exc:
        if not exc.conflict:
            raise
