"""How the sandbox's stand-in for the ACK controller reads a resource: ACK's Go-style field names
turned back into the SageMaker API's (roleARN -> RoleArn, s3URI -> S3Uri), and the job states
after which nothing changes. Shared by sim.sandbox.ack (training) and sim.sandbox.ack_transform."""

from __future__ import annotations

import re

TERMINAL = ("Completed", "Failed", "Stopped")
_VERBATIM = {"hyperParameters", "staticHyperParameters", "environment"}  # user keys, not API field names


def api_name(key: str) -> str:
    """ACK's Go-style field names to the SageMaker API's: roleARN -> RoleArn, s3URI -> S3Uri."""
    key = re.sub(r"ARN", "Arn", key)
    key = re.sub(r"URI", "Uri", key)
    key = re.sub(r"KMSKeyID", "KmsKeyId", key)
    key = re.sub(r"ID$", "Id", key)
    return key[:1].upper() + key[1:]


def to_api(value, field: str = ""):
    if isinstance(value, dict):
        if field in _VERBATIM:
            return dict(value)
        return {api_name(k): to_api(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [to_api(v, field) for v in value]
    return value
