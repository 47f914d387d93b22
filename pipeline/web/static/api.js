// The JSON API (pipeline/web/app.py; docs/web.md). Every call returns parsed JSON or throws an
// ApiError carrying the server's `detail`, which the views show as it is (as text).

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function call(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" }, ...options });
  } catch (err) {
    throw new ApiError(0, `The server did not answer (${err.message}). Is \`personagraph serve\` still running?`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail
      : body && body.detail ? JSON.stringify(body.detail) : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, detail);
  }
  return body;
}

const q = encodeURIComponent;

export const api = {
  info: () => call("/api/info"),
  queries: () => call("/api/queries"),
  query: (body, signal) => call("/api/query", {
    method: "POST", signal, headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  }),
  persona: (id) => call(`/api/persona/${q(id)}`),
  searchPersonas: (text, limit = 20) => call(`/api/personas?q=${q(text)}&limit=${q(limit)}`),
  neighbourhood: (id, hops, limit) => call(`/api/neighbourhood/${q(id)}?hops=${q(hops)}&limit=${q(limit)}`),
  coverage: () => call("/api/coverage"),
  runs: () => call("/api/runs"),
  sampleFiles: () => call("/api/samples/files"),
  samples: (file, offset, limit) => call(`/api/samples?file=${q(file)}&offset=${q(offset)}&limit=${q(limit)}`),
};
