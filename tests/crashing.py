"""Killing the controller in tests: an adapter wrapper that dies at its k-th write, before the
request goes out or after it went out with the answer lost (tests/test_controller_crash.py for
training bursts, tests/test_transform_crash.py for batch transform bursts,
tests/test_tuning_crash.py for hyperparameter tuning bursts)."""

from __future__ import annotations

# Every call of the Kubernetes and SageMaker adapters that writes.
WRITES = {"patch_job", "event", "create_custom", "delete_custom", "create_config_map", "replace_config_map",
          "create_training_job", "stop", "create_model", "create_transform_job", "stop_transform_job", "delete_model",
          "create_tuning_job", "stop_tuning_job",
          # the virtual node's keeping and its pods' agent (burstAs: virtualNode)
          "create_node", "patch_node", "patch_node_status", "renew_lease", "patch_pod_status", "delete_pod"}


class Crash(BaseException):
    """The process dies (not an Exception: nothing in the controller may catch it)."""


class Dies:
    """Wraps an adapter; the `at`-th write (counting from 0) kills the controller, before or after
    it reaches the server. written, if given, records the name of every write, in order."""

    def __init__(self, inner, counter: list[int], at: int | None, after: bool, written: list[str] | None = None):
        self._inner, self._counter, self._at, self._after = inner, counter, at, after
        self._written = written

    def __getattr__(self, name):
        value = getattr(self._inner, name)
        if name not in WRITES:
            return value

        def call(*args, **kwargs):
            if self._counter[1]:
                raise Crash("dead already")  # a dead process writes nothing more, on any thread
            index = self._counter[0]
            self._counter[0] += 1
            if self._written is not None:
                self._written.append(name)
            if index == self._at and not self._after:
                self._counter[1] = True
                raise Crash(f"before {name}")
            out = value(*args, **kwargs)
            if index == self._at:
                self._counter[1] = True
                raise Crash(f"after {name}")
            return out

        return call
