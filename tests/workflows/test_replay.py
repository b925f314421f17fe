"""Recorded histories of representative runs replay against today's workflow code.

A change to `CopilotTurnWorkflow` or `SubscriptionWorkflow` that would issue different commands
for an in-flight run fails here before it ships. Such a change needs `workflow.patched` (or a new
workflow type): see the README's "Changing workflow code". The histories are recorded from real
runs by `make record-histories` (tests/integration/test_record_histories.py).
"""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
EXPECTED = {
    "turn_text_only", "turn_reasoning", "turn_tool_round", "turn_two_tool_rounds_follow_up", "turn_stop_during_tool",
    "turn_auto_continue_first_run", "turn_auto_continue_second_run", "turn_sub_session_parent",
    "turn_sub_session_child", "subscription_checkout_then_cancel", "turn_spend_limit_between_rounds",
    "turn_stop_reaches_sub_session_parent", "turn_stop_reaches_sub_session_child", "turn_tool_approval",
    # Recorded on deploy c1b36fe, before the spend check before a first round, Stop signalling
    # sub-sessions and the usage write answering with the spend state.
    "deploy_c1b36fe_turn_auto_continue_second_run", "deploy_c1b36fe_turn_stop_during_tool",
    "deploy_c1b36fe_turn_sub_session_child", "deploy_c1b36fe_turn_sub_session_parent",
    "deploy_c1b36fe_turn_tool_round",
    # Recorded on the deploy before the allowed tools travelled in the turn's input and before the
    # workflow called activities through their interfaces: such runs in flight still replay.
    "previous_deploy_turn_tool_round", "previous_deploy_turn_sub_session_parent",
    "previous_deploy_turn_sub_session_child", "previous_deploy_subscription_checkout_then_cancel",
}


def test_every_representative_run_is_recorded():
    assert {path.stem for path in HISTORIES} >= EXPECTED


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
