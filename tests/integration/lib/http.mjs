// http: small helpers for the gateways' and router's HTTP endpoints (/health, /ready,
// /metrics) and a bounded polling wait. Every request has a timeout.

export async function httpGet(url, timeoutMs = 3000) {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const body = await res.text();
  return { status: res.status, body, headers: res.headers };
}

export async function getJSON(url, timeoutMs = 3000) {
  const r = await httpGet(url, timeoutMs);
  let json;
  try {
    json = JSON.parse(r.body);
  } catch {
    throw new Error(`GET ${url}: status ${r.status}, body is not JSON: ${r.body.slice(0, 200)}`);
  }
  return { status: r.status, json };
}

// Parses Prometheus text format into Map("name{labels}" or "name" -> number).
export function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

export async function getMetrics(url) {
  const r = await httpGet(url);
  if (r.status !== 200) throw new Error(`GET ${url}: status ${r.status}`);
  return parseMetrics(r.body);
}

// Value of one series (labels as written, e.g. 'reason="invalid_json"'); 0 when absent.
export function metric(map, name, labels) {
  const key = labels ? `${name}{${labels}}` : name;
  return map.get(key) ?? 0;
}

// Sum of every series of a metric name, whatever its labels.
export function metricSum(map, name) {
  let sum = 0;
  for (const [k, v] of map) {
    if (k === name || k.startsWith(`${name}{`)) sum += v;
  }
  return sum;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn until it returns a truthy value; fails after timeoutMs with the last value/error.
export async function waitFor(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(100);
  }
}
