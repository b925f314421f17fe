// The API as the page calls it: same origin, a bearer token, JSON errors as `ApiError`.
const TOKEN_KEY = "copilot-playground:token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const auth = {
  get token() {
    return localStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
  },
};

// A token handed over in the URL's fragment (`/playground#token=...`, what `make dev` prints): kept,
// and taken out of the address bar. A fragment never reaches a server.
export function takeTokenFromUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (!token) return;
  auth.token = token;
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
}

export async function request(method, path, { body, headers = {}, signal } = {}) {
  const init = { method, signal, headers: { Authorization: `Bearer ${auth.token}`, ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  return fetch(path, init);
}

export async function errorOf(response) {
  let code = "http_error";
  let message = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    code = body?.error?.code ?? code;
    message = body?.error?.message ?? message;
  } catch {
    // not JSON
  }
  return new ApiError(response.status, code, message);
}

export async function json(method, path, options) {
  const response = await request(method, path, options);
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}
