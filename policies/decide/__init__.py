"""decide(): one Job, one answer; the cloud side of it; and what a burst is written out as.

Imports policies.model, policies.forecast and policies.spot."""

from .emit import ACK_API_VERSION, LEGACY_API_VERSION, create_training_job_request, training_job_name, training_job_resource
from .one_job import (Cycle, EPSILON, Evaluated, REQUEUE_MIN_SECONDS, assume, backfill_beyond_depth,
                      beyond_planning_depth, decide, evaluate, is_managed, local_max_wait, may_backfill_beyond_depth,
                      policy_catalog, price_turns_at, reserves)
from .transform_emit import (MODEL_PLURAL, TRANSFORM_PLURALS, create_model_request, create_transform_job_request,
                             emitted, model_resource, transform_job_name, transform_job_resource)
from .tuning_emit import (TUNING_KINDS, TUNING_PLURAL, create_tuning_job_request, tuning_emitted, tuning_job_name,
                          tuning_job_resource)

__all__ = [
    "TUNING_KINDS", "TUNING_PLURAL", "create_tuning_job_request", "tuning_emitted", "tuning_job_name",
    "tuning_job_resource",
    "ACK_API_VERSION", "LEGACY_API_VERSION", "MODEL_PLURAL", "TRANSFORM_PLURALS", "create_model_request",
    "create_transform_job_request", "emitted", "model_resource", "transform_job_name", "transform_job_resource",
    "Cycle", "EPSILON", "Evaluated", "REQUEUE_MIN_SECONDS", "assume", "backfill_beyond_depth",
    "beyond_planning_depth", "create_training_job_request", "decide", "evaluate", "is_managed",
    "local_max_wait", "may_backfill_beyond_depth", "policy_catalog", "price_turns_at", "reserves",
    "training_job_name", "training_job_resource",
]
