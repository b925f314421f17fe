"""Tools that exist only in tests, served beside the real ones through the same catalogue
injection the worker and the API use (`tools.registry.with_tools`); the registry itself is
never changed."""

import asyncio
import os
import signal
from pathlib import Path

from pydantic import BaseModel

from tools.base import Tool
from tools.registry import with_tools


class Empty(BaseModel):
    pass


class NapInput(BaseModel):
    seconds: float = 8


async def guarded(arguments: Empty, context) -> str:
    return "guarded tool ran"


# Set when the paid tool has produced its output (a test cancels it right then).
produced = asyncio.Event()


async def produce_then_linger(arguments: Empty, context) -> str:
    produced.set()
    return "output"


async def fail_without_output(arguments: Empty, context) -> str:
    raise RuntimeError("a paid tool that breaks")


async def nap(arguments: NapInput, context) -> str:
    await asyncio.sleep(arguments.seconds)
    return "woke up"


async def ignore_cancellation(arguments: NapInput, context) -> str:
    try:
        await asyncio.sleep(arguments.seconds)
    except asyncio.CancelledError:
        await asyncio.sleep(arguments.seconds)  # a tool that does not honour cancellation
    return "woke up"


class KillInput(BaseModel):
    attempts_file: str


async def kill_own_worker(arguments: KillInput, context) -> str:
    """A poison pill: notes the attempt, then takes its worker down as a crash would."""
    with Path(arguments.attempts_file).open("a") as attempts:
        attempts.write(f"{os.getpid()}\n")
    os.kill(os.getpid(), signal.SIGKILL)
    return "unreachable"


GATED = Tool("gated", "Needs the listing first.", Empty, guarded, prerequisite="list_workspace_files")
PAID = Tool("paid", "Costs 5.", Empty, produce_then_linger, credit_cost=5)
PAID_FAILING = Tool("paid_failing", "Costs 5, then fails.", Empty, fail_without_output, credit_cost=5)
PAID_NAP = Tool("paid_nap", "Costs 5, sleeps.", NapInput, nap, credit_cost=5)
STUBBORN_NAP = Tool("stubborn_nap", "Sleeps and ignores cancellation.", NapInput, ignore_cancellation)

class OutsideInput(BaseModel):
    path: str


async def write_outside(arguments: OutsideInput, context) -> str:
    """Stands for a tool that changes something beyond the session's workspace."""
    Path(arguments.path).write_text("changed")
    return "changed it"


OUTSIDE_EFFECT = Tool("change_outside", "Changes a file outside the workspace.", OutsideInput, write_outside,
                      effects_outside_workspace=True)
KILL_OWN_WORKER = Tool("kill_own_worker", "Kills the worker that runs it.", KillInput, kill_own_worker)

TEST_TOOLS = with_tools(GATED, PAID, PAID_FAILING, PAID_NAP, STUBBORN_NAP, KILL_OWN_WORKER, OUTSIDE_EFFECT)
