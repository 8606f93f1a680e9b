"""The sandbox side of tests/real/test_conformance.py, in the fast suite: the same checks, run on
the sandbox alone (the real tier runs them on both servers)."""

from __future__ import annotations

import pytest

from scheduler.kube import Kube, api_client
from sim.sandbox.apiserver import SandboxServer
from tests.real import test_conformance as checks


@pytest.fixture
def server(tmp_path):
    sandbox = SandboxServer().start()
    yield Kube(api_client(host=sandbox.url)), "default", sandbox.kubeconfig(tmp_path / "kubeconfig")
    sandbox.stop()


test_list_items_carry_no_kind = checks.test_list_items_carry_no_kind
test_a_job_name_over_63_characters_is_invalid = checks.test_a_job_name_over_63_characters_is_invalid
test_a_status_sent_with_a_create_is_dropped = checks.test_a_status_sent_with_a_create_is_dropped
test_strategic_merge_unions_finalizers_and_replaces_tolerations = \
    checks.test_strategic_merge_unions_finalizers_and_replaces_tolerations
test_a_suspended_job_that_never_started_takes_scheduling_directives_and_nothing_else = \
    checks.test_a_suspended_job_that_never_started_takes_scheduling_directives_and_nothing_else
test_kubectl_wait_sees_the_initial_state_through_a_watch_list = \
    checks.test_kubectl_wait_sees_the_initial_state_through_a_watch_list
