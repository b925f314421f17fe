// Compiled by `tsc -p web/client` in the test: the generated types describe the routes as served.
import { createCopilotClient, type Schemas, streamUrl } from "./index";

async function example(token: string): Promise<void> {
  const api = createCopilotClient({ baseUrl: "http://127.0.0.1:8000", token });
  const created = await api.POST("/api/chat/sessions", { body: { title: "A trip" } });
  const session: Schemas["SessionSummary"] | undefined = created.data;
  if (!session) return;
  const detail = await api.GET("/api/chat/sessions/{session_id}", { params: { path: { session_id: session.id } } });
  const active: Schemas["LiveTurn"] | null | undefined = detail.data?.active_turn;
  const usage = await api.GET("/api/chat/usage");
  const tier: string | undefined = usage.data?.tier;
  const stopped = await api.POST("/api/chat/sessions/{session_id}/stop", { params: { path: { session_id: session.id } } });
  const error: Schemas["ErrorResponse"] | undefined = stopped.error;
  void [active, tier, error, streamUrl("http://127.0.0.1:8000", session.id)];
}

void example;
