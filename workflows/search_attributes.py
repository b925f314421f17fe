"""Search attributes that let operators filter turns in the Temporal UI."""

from temporalio.common import SearchAttributeKey

USER_ID = SearchAttributeKey.for_keyword("CopilotUserId")
SESSION_ID = SearchAttributeKey.for_keyword("CopilotSessionId")
TURN_STATUS = SearchAttributeKey.for_keyword("CopilotTurnStatus")
KIND = SearchAttributeKey.for_keyword("CopilotKind")

# Registered on the dev server at start (`--search-attribute NAME=TYPE`) and in docker-compose.
SEARCH_ATTRIBUTE_TYPES = {key.name: "Keyword" for key in (USER_ID, SESSION_ID, TURN_STATUS, KIND)}
