"""Which tools a session may use: an allow-list or a deny-list, stored in its metadata (and
carried, resolved to names, in every turn's input)."""

from typing import Iterable, Optional

from pydantic import BaseModel, ConfigDict, Field

# Tools a builder-bound session's turns never get (seed notes §9.3): the builder's chat works on the
# graph it is bound to, so it makes or customises no other agent, and it has the guide in its prompt.
BUILDER_BLOCKED_TOOLS = ("create_agent", "customize_agent", "get_agent_building_guide")


class ToolFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow: Optional[list[str]] = Field(default=None, description="Only these tools (null: all).")
    deny: list[str] = Field(default_factory=list, description="Never these tools.")

    def allowed(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if (self.allow is None or n in self.allow) and n not in self.deny]

    def narrowed_to(self, parent_allowed: Iterable[str]) -> "ToolFilter":
        """This filter, never wider than what the parent may use (sub-sessions inherit)."""
        parent = set(parent_allowed)
        return ToolFilter(allow=sorted(n for n in parent if self.allow is None or n in self.allow),
                          deny=sorted(set(self.deny)))

    def denying(self, names: Iterable[str]) -> "ToolFilter":
        """This filter, also denying these tools."""
        return ToolFilter(allow=self.allow, deny=sorted(set(self.deny) | set(names)))
