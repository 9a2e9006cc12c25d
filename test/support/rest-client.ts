/** A plain REST caller for black-box tests: real HTTP, JSON in and out, no SDK. */
export interface RestResponse {
  status: number;
  headers: Headers;
  body: any;
}

export function restClient(baseUrl: string) {
  return async function rest(
    method: "GET" | "POST" | "OPTIONS",
    path: string,
    options: { key?: string; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<RestResponse> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.key) headers.authorization = `Bearer ${options.key}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(baseUrl + path, {
      method,
      headers,
      body: options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body),
    });
    const text = await response.text();
    let body: unknown = text;
    if (response.headers.get("content-type")?.includes("json")) body = text ? JSON.parse(text) : undefined;
    return { status: response.status, headers: response.headers, body };
  };
}

/** The failure envelope every error must carry. */
export function expectErrorEnvelope(response: RestResponse, status: number, code: string) {
  const { body } = response;
  const problems: string[] = [];
  if (response.status !== status) problems.push(`status ${response.status} != ${status}`);
  if (body?.success !== false) problems.push("success is not false");
  if (body?.code !== code) problems.push(`code ${body?.code} != ${code}`);
  if (typeof body?.error !== "string" || body.error.length === 0) problems.push("error message missing");
  if (typeof body?.request_id !== "string") problems.push("request_id missing");
  if ("data" in (body ?? {})) problems.push("failure carries data");
  if (problems.length) throw new Error(`bad error envelope (${problems.join(", ")}): ${JSON.stringify(body)}`);
}
