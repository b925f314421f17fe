from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from tools.base import Tool, ToolContext, ToolError


class CurrentTimeInput(BaseModel):
    timezone: str = Field(default="UTC", max_length=64, description="An IANA time zone name, e.g. Europe/Berlin.")


async def get_current_time(arguments: CurrentTimeInput, context: ToolContext) -> dict:
    try:
        zone = ZoneInfo(arguments.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError("unknown_timezone", f"'{arguments.timezone}' is not an IANA time zone name.")
    now = datetime.now(zone)
    return {"timezone": arguments.timezone, "iso": now.isoformat(timespec="seconds"), "weekday": now.strftime("%A")}


TOOL = Tool(
    name="get_current_time",
    description="Returns the current date and time in a time zone.",
    input_model=CurrentTimeInput,
    run=get_current_time,
)
