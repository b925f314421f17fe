"""Run inside a user namespace that may create no further one (the test starts it so), as a
container under Docker's default seccomp profile would be: prints what the worker and the tool do.
`python -m tests.support.no_sandbox_host <workspace root>`"""

import asyncio
import json
import sys
from pathlib import Path

from sandbox import probe
from settings import Settings
from tools.base import ToolContext, ToolError, ToolServices
from tools.bash_exec import BashExecInput, bash_exec
from tools.registry import DEFAULT_TOOLS
from worker import offered_tools
from workspace.storage import DiskStorage


async def main(root: Path) -> dict:
    settings = Settings(_env_file=None, workspace_dir=str(root))
    services = ToolServices(settings, sessions=None, storage=DiskStorage(root))
    context = ToolContext("session-1", "user-1", "turn-1", "call-1", services)
    try:
        await bash_exec(BashExecInput(command=f"touch {root}/ran"), context)
        refusal = None
    except ToolError as error:
        refusal = {"code": error.code, "message": error.message}
    return {"available": probe().available, "reason": probe().reason,
            "offered": sorted(offered_tools(settings, DEFAULT_TOOLS)), "refusal": refusal,
            "ran": (root / "ran").exists()}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1])))))
