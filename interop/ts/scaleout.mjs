// Drives filestage replicas behind a load balancer with the official
// TypeScript MCP SDK, as many agents would: concurrent workers, each with
// its own client, calling stage_connector_file and request_presigned_upload
// in turn (and PUTting the bytes each presign is for), while the test stops
// and restarts a replica underneath them.
//
//   node scaleout.mjs <endpoint> <plan JSON>
//
// endpoint is the load balancer's streamable HTTP URL (http://HOST:PORT/mcp).
// The plan:
//   workers        how many clients run at once
//   sources        source URLs to stage, each with "{seed}" where the
//                  worker puts a seed of its own (a URL without it names
//                  the same bytes every time)
//   presignSizes   sizes of the byte strings presigned and uploaded, in turn
//   maxAttempts    tries per call when it fails at the transport level
//   retryDelayMs   wait before a retry
//   callTimeoutMs  time limit of one call
//   maxSeconds     run at most this long
// The workers stop when stdin ends (the test's signal, so that it decides
// how long the run lasts from what it sees) or after maxSeconds.
//
// Prints one JSON object per call on stdout: what was sent, how many
// attempts it took and why earlier ones failed, and how it ended (outcome
// ok, tool_error, rpc_error or transport, with the answer or the error's
// text); presigns add the PUT's status. Bytes are made by gen(seed, size),
// which scaleout_test.go makes the same way, so it can check what storage
// holds without being sent any bytes. Exits 0 once every worker is done;
// judging the calls is the test's job.
import { createHash } from 'node:crypto';
import process from 'node:process';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { assert, md5, show } from './flows.mjs';

// gen is size bytes: SHA-256 of "<seed>:<i>" for i = 0, 1, … end to end.
function gen(seed, size) {
  const out = Buffer.alloc(size);
  for (let i = 0, off = 0; off < size; i++, off += 32) {
    createHash('sha256').update(`${seed}:${i}`).digest().copy(out, off);
  }
  return out;
}

// Node's fetch (undici) wraps network failures in a TypeError whose cause
// carries the socket's error code.
const networkCodes = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT',
]);

// transportFailure says whether err means the call got no answer from
// filestage: the connection was refused, reset or cut, or the load
// balancer answered for want of a replica (502, 503). Only those are
// retried; a tool error or a JSON-RPC error is filestage's answer, and
// trying again would only hide it. A reset or a cut answer may come after
// filestage ran the call: trying again is safe for these two tools only
// because they are idempotent (a key is the bytes' MD5, and a presign
// mints another URL for the same key), which a client of other tools
// would have to know before it did the same.
function transportFailure(err) {
  if (err instanceof StreamableHTTPError) return err.code === 502 || err.code === 503;
  if (!(err instanceof TypeError)) return false;
  if (err.message === 'terminated') return true; // the answer's body was cut
  return networkCodes.has(err.cause?.code);
}

function describe(err) {
  const status = err instanceof StreamableHTTPError ? ` (HTTP ${err.code})` : '';
  const cause = err?.cause ? ` (${[err.cause.code, err.cause.message ?? err.cause].filter(Boolean).join(' ')})` : '';
  return `${err?.name ?? 'Error'}${status}: ${err?.message ?? err}${cause}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function textOf(res) {
  return (res.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

// attempt runs fn until it succeeds, fails other than at the transport
// level, or has been tried maxAttempts times; it returns what a line of
// output says of the call.
async function attempt(plan, fn) {
  const retries = [];
  const t0 = Date.now();
  for (;;) {
    try {
      const res = await fn();
      return { at: t0, attempts: retries.length + 1, retries, ms: Date.now() - t0, res };
    } catch (err) {
      const transport = transportFailure(err);
      if (!transport || retries.length + 1 >= plan.maxAttempts) {
        return {
          at: t0, attempts: retries.length + 1, retries, ms: Date.now() - t0,
          outcome: transport ? 'transport' : 'rpc_error', error: describe(err),
        };
      }
      retries.push(describe(err));
      await sleep(plan.retryDelayMs);
    }
  }
}

function emit(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

let stopping = false;

async function connect(endpoint, plan, worker) {
  for (let tries = 1; ; tries++) {
    const client = new Client({ name: 'filestage-scaleout', version: '1.0.0' });
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(endpoint)), { timeout: plan.callTimeoutMs });
      if (tries > 1) emit({ worker, tool: 'initialize', at: Date.now(), attempts: tries, outcome: 'ok' });
      return client;
    } catch (err) {
      await client.close().catch(() => {});
      if (!transportFailure(err) || tries >= plan.maxAttempts) {
        emit({ worker, tool: 'initialize', at: Date.now(), attempts: tries, outcome: transportFailure(err) ? 'transport' : 'rpc_error', error: describe(err) });
        return null;
      }
      await sleep(plan.retryDelayMs);
    }
  }
}

async function stage(client, plan, worker, seq) {
  const template = plan.sources[(worker + seq) % plan.sources.length];
  const args = { url: template.replaceAll('{seed}', `w${worker}s${seq}`), toolSlug: 'GMAIL_SEND_EMAIL' };
  const r = await attempt(plan, () => client.callTool({ name: 'stage_connector_file', arguments: args }, undefined, { timeout: plan.callTimeoutMs }));
  const line = { worker, seq, tool: 'stage_connector_file', args, at: r.at, attempts: r.attempts, retries: r.retries, ms: r.ms };
  if (!r.res) return { ...line, outcome: r.outcome, error: r.error };
  if (r.res.isError) return { ...line, outcome: 'tool_error', error: textOf(r.res) };
  return { ...line, outcome: 'ok', result: r.res.structuredContent ?? null };
}

async function presign(client, plan, worker, seq) {
  const seed = `p-w${worker}s${seq}`;
  const size = plan.presignSizes[(worker + seq) % plan.presignSizes.length];
  const body = gen(seed, size);
  const args = {
    toolkit_slug: 'slack', tool_slug: 'SLACK_UPLOAD_FILE', filename: `${seed}.bin`,
    mimetype: 'application/octet-stream', md5: md5(body), size,
  };
  const r = await attempt(plan, () => client.callTool({ name: 'request_presigned_upload', arguments: args }, undefined, { timeout: plan.callTimeoutMs }));
  const line = { worker, seq, tool: 'request_presigned_upload', seed, args, at: r.at, attempts: r.attempts, retries: r.retries, ms: r.ms };
  if (!r.res) return { ...line, outcome: r.outcome, error: r.error };
  if (r.res.isError) return { ...line, outcome: 'tool_error', error: textOf(r.res) };
  const slot = r.res.structuredContent ?? null;
  const out = { ...line, outcome: 'ok', result: slot };
  if (slot?.type === 'new' && slot.new_presigned_url) {
    // As an uploader does: exactly the method and headers given. The URL
    // is the storage's own, so the load balancer is not in the way.
    try {
      const put = await fetch(slot.new_presigned_url, { method: slot.method, headers: slot.headers, body });
      const text = await put.text();
      out.put = { status: put.status, ...(put.ok ? {} : { body: text.slice(0, 500) }) };
    } catch (err) {
      out.put = { status: 0, body: describe(err) };
    }
  }
  return out;
}

async function worker(endpoint, plan, w) {
  const client = await connect(endpoint, plan, w);
  if (!client) return;
  try {
    // Workers start on different tools, so both are always in flight.
    for (let seq = 0; !stopping; seq++) {
      emit((seq + w) % 2 === 0 ? await stage(client, plan, w, seq) : await presign(client, plan, w, seq));
    }
  } finally {
    await client.close().catch(() => {});
  }
}

async function main() {
  const [endpoint, planArg] = process.argv.slice(2);
  assert(endpoint && planArg, 'usage: node scaleout.mjs <endpoint> <plan JSON>');
  const plan = JSON.parse(planArg);
  for (const k of ['workers', 'maxAttempts', 'retryDelayMs', 'callTimeoutMs', 'maxSeconds']) {
    assert(Number.isInteger(plan[k]) && plan[k] > 0, `plan.${k}: want a positive integer, got ${show(plan[k])}`);
  }
  assert(plan.sources?.length > 0 && plan.presignSizes?.length > 0, `plan: sources and presignSizes must not be empty: ${show(plan)}`);

  process.stdin.on('end', () => { stopping = true; });
  process.stdin.on('error', () => { stopping = true; });
  process.stdin.resume();
  const cap = setTimeout(() => { stopping = true; }, plan.maxSeconds * 1000);
  await Promise.all(Array.from({ length: plan.workers }, (_, w) => worker(endpoint, plan, w)));
  clearTimeout(cap);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`scaleout.mjs: ${err?.stack ?? err}`);
    process.exit(1);
  },
);
