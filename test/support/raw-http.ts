/** Raw HTTP calls, for tests that look at exact statuses, headers and bodies rather than through the typed client. */
export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

export async function rawRequest(url: string, init: RequestInit = {}): Promise<RawResponse> {
  const response = await fetch(url, init);
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** POST /trpc/<path> as the typed client sends a mutation (superjson body `{"json": input}`). */
export function trpcMutation(baseUrl: string, path: string, input: unknown, headers: Record<string, string> = {}) {
  return rawRequest(`${baseUrl}/trpc/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ json: input }),
  });
}

/** POST a raw body (any text) to a path. */
export function postText(baseUrl: string, path: string, body: string, headers: Record<string, string> = {}) {
  return rawRequest(`${baseUrl}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
