// A typed client of the Durable Copilot API: openapi-fetch over the types generated from the spec.
//
//   import { createCopilotClient } from "./web/client";
//   const api = createCopilotClient({ baseUrl: "http://127.0.0.1:8000", token });
//   const { data, error } = await api.POST("/api/chat/sessions", { body: { title: "Trip" } });
//   // data: components["schemas"]["SessionSummary"]; error: components["schemas"]["ErrorResponse"]
//
// A turn's stream (`POST /api/chat/sessions/{session_id}/stream`) is an AI SDK UI message stream:
// read it with the `ai` package (`parseJsonEventStream`, `readUIMessageStream`), or point `useChat`'s
// DefaultChatTransport at it; `streamUrl` gives its address.
import createClient, { type Client, type ClientOptions } from "openapi-fetch";
import type { components, operations, paths } from "./schema";

export type { components, operations, paths };
export type Schemas = components["schemas"];

export interface CopilotClientOptions extends ClientOptions {
  /** A JWT (HS256, `sub` = the user id); `make dev` prints a development one. */
  token?: string;
}

export function createCopilotClient({ token, headers, ...options }: CopilotClientOptions = {}): Client<paths> {
  return createClient<paths>({
    ...options,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(headers as Record<string, string>) },
  });
}

export function streamUrl(baseUrl: string, sessionId: string): string {
  return `${baseUrl.replace(/\/$/, "")}/api/chat/sessions/${encodeURIComponent(sessionId)}/stream`;
}
