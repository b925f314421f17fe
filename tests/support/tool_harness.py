"""Runs the tool activity directly (as Temporal would, retries included) on real Postgres and Redis."""

import json
import uuid
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from activities.tools import ToolActivities
from agent_graphs.local_store import LocalGraphStore
from billing import credits
from conversation.sessions import create_session
from database import session_maker
from models.turn import ToolCall, ToolRequest, ToolResult
from stream_relay.connection import redis_client
from tests.support.extra_tools import TEST_TOOLS
from tools.base import ToolServices
from tools.registry import ToolCatalog
from workflows.turn_client import TemporalSubSessions
from workspace.storage import DiskStorage


class ToolHarness:
    def __init__(self, settings, temporal_client=None, tools: ToolCatalog = TEST_TOOLS):
        self.settings = settings
        self.sessions = session_maker(settings.database_url)
        self.tools = tools
        sub_sessions = TemporalSubSessions(temporal_client, self.sessions) if temporal_client else None
        self.graphs = LocalGraphStore(self.sessions)
        self.services = ToolServices(settings, self.sessions, DiskStorage(Path(settings.workspace_dir)), sub_sessions,
                                     self.graphs)
        self.activities = ToolActivities(redis_client(settings.redis_url), self.services, tools)

    async def new_session(self, user_id: str | None = None, credits_granted: int = 100) -> tuple[str, str]:
        user_id = user_id or f"tool-user-{uuid.uuid4().hex[:8]}"
        async with self.sessions() as db:
            session = await create_session(db, user_id, "tools", {})
            await credits.grant_welcome_credits(db, user_id, credits_granted)
            await db.commit()
        return session.id, user_id

    def request(self, session_id: str, user_id: str, name: str, arguments: dict, allowed=None,
                call_id: str | None = None, turn_id: str = "turn-1", builder_graph_id: str | None = None,
                dry_run: bool = False) -> ToolRequest:
        return ToolRequest(session_id=session_id, user_id=user_id, turn_id=turn_id, stream_key=f"test:{uuid.uuid4()}",
                           call=ToolCall(id=call_id or f"call_{uuid.uuid4().hex[:8]}", name=name,
                                         arguments=json.dumps(arguments)),
                           allowed_tools=list(self.tools) if allowed is None else allowed,
                           builder_graph_id=builder_graph_id, dry_run=dry_run)

    async def run(self, request: ToolRequest, environment: ActivityEnvironment | None = None) -> ToolResult:
        return await (environment or ActivityEnvironment()).run(self.activities.run_tool, request)

    async def balance(self, user_id: str) -> int:
        async with self.sessions() as db:
            return await credits.balance(db, user_id)
