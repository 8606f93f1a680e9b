"""`spillway logs JOB`: what a burst's training (or transform) jobs wrote, from CloudWatch."""

from __future__ import annotations

import argparse

from policies import InputError, InputIssue
from policies import constants as C
from policies.model import SageMakerKind

DESCRIPTION = """\
Print the CloudWatch log of a burst Job's SageMaker training jobs (log group
/aws/sagemaker/TrainingJobs), or transform jobs (/aws/sagemaker/TransformJobs), oldest first:
each job it ran, in order (the launch, a spot fallback's relaunch, a backoffLimit retry), under a
header. A hyperparameter tuning burst's log is its trials' (training jobs), in launch order. The names come from the burst
ledger (--ledger-namespace), the region from the burst. A Job that ran on the cluster has no
SageMaker log: use kubectl logs. AWS credentials come from the usual places (environment,
~/.aws, an IAM role); against the sandbox's SageMaker any values will do
(AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x).

examples:
  spillway logs finetune-5                       the Job finetune-5 in namespace default
  spillway logs train-llm -n research --kubeconfig cluster.kubeconfig
  spillway logs finetune-5 --sagemaker-endpoint-url http://127.0.0.1:PORT   the sandbox's SageMaker"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("logs", help="print a burst Job's SageMaker training (or transform) log",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=DESCRIPTION)
    p.add_argument("job", metavar="JOB", help="the Job's name")
    p.add_argument("-n", "--namespace", default="default", help="the Job's namespace (default: default)")
    p.add_argument("--kubeconfig", help="kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or in-cluster")
    p.add_argument("--context", help="kubeconfig context; default: the current one")
    p.add_argument("--ledger-namespace", default="spillway-system",
                   help="where the controller keeps its burst ledger (its --namespace; default spillway-system)")
    p.add_argument("--sagemaker-endpoint-url", help="SageMaker and CloudWatch Logs endpoint (the sandbox's); "
                   "default: AWS")
    p.set_defaults(run=cmd_logs)


def cmd_logs(args) -> int:
    from .kube import Kube, KubeError, api_client
    from .kubelet_api import header
    from .ledger import Ledger
    from .sagemaker import SageMaker, SageMakerError
    from .tuning_burst import TuningSteps

    try:
        kube = Kube(api_client(args.kubeconfig, args.context))
    except Exception as exc:  # noqa: BLE001 - the kubernetes config loader raises several kinds
        raise InputError([InputIssue("--kubeconfig", "", f"cannot load a cluster configuration: {exc}",
                                     "pass --kubeconfig FILE, set KUBECONFIG, or run inside the cluster")]) from None
    try:
        job = kube.get_job(args.namespace, args.job)
        bursts = Ledger(kube, args.ledger_namespace).load()
    except KubeError as exc:
        fix = ("check the name and -n NAMESPACE (kubectl get jobs -A)" if exc.not_found else
               "check that the API server is up and the kubeconfig points at it (kubectl cluster-info)")
        raise InputError([InputIssue(f"{args.namespace}/{args.job}", "metadata.name", exc.message, fix)]) from None
    burst = bursts.get(job["metadata"]["uid"])
    if burst is None:
        placement = (job["metadata"].get("annotations") or {}).get(C.DECISION_PLACEMENT, "none yet")
        raise InputError([InputIssue(f"{args.namespace}/{args.job}", f'metadata.annotations["{C.DECISION_PLACEMENT}"]',
                                     f"this Job has not burst to SageMaker (placement: {placement})",
                                     "kubectl logs job/" + args.job)])
    sagemaker = SageMaker(burst.launch.region, endpoint_url=args.sagemaker_endpoint_url)
    names, words = list(burst.names), SageMakerKind(burst.launch.kind).job_words
    if burst.launch.kind == SageMakerKind.TUNING:  # its trials write the log, each a training job
        try:
            names, words = TuningSteps().logged(sagemaker, names)
        except SageMakerError as exc:
            raise InputError([InputIssue(burst.current_name, "SageMaker", f"cannot list its trials: {exc}",
                                         "use AWS credentials that allow "
                                         "sagemaker:ListTrainingJobsForHyperParameterTuningJob")]) from None
    for attempt, name in enumerate(names):
        try:
            lines = sagemaker.job_log(name)
        except SageMakerError as exc:
            raise InputError([InputIssue(name, "CloudWatch Logs", f"cannot read its log: {exc}",
                                         "use AWS credentials that allow logs:DescribeLogStreams and "
                                         "logs:GetLogEvents on /aws/sagemaker/TrainingJobs and TransformJobs (against the "
                                         "sandbox's --sagemaker-endpoint-url, any will do)")]) from None
        print(header(name, words, attempt, len(names)))
        print("\n".join(lines) if lines else "(no log yet)")
    return 0
