// Drives filestage with the official TypeScript MCP SDK, to show that a
// client not written in Go can use both tools over every transport.
//
//   node client.mjs <stdio|http|sse> <target> <sourceURL> <md5hex> <sizeBytes>
//
// target is the filestage binary for stdio (it gets FILESTAGE_DATA_DIR and
// FILESTAGE_ALLOW_PRIVATE_URLS from this process's environment), else the
// endpoint URL: http://127.0.0.1:PORT/mcp or http://127.0.0.1:PORT/sse.
// Prints "ok <transport>" and exits 0, or prints the reason to stderr and
// exits 1. interop_test.go runs it.
import { createHash, randomBytes } from 'node:crypto';
import process from 'node:process';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const md5 = (buf) => createHash('md5').update(buf).digest('hex');
const show = (v) => JSON.stringify(v);

function transportFor(kind, target) {
  switch (kind) {
    case 'stdio': {
      // The SDK passes only a small safe subset of the environment unless
      // told otherwise; filestage needs its own variables.
      const env = getDefaultEnvironment();
      for (const k of ['FILESTAGE_DATA_DIR', 'FILESTAGE_ALLOW_PRIVATE_URLS']) {
        if (process.env[k] !== undefined) env[k] = process.env[k];
      }
      return new StdioClientTransport({ command: target, args: [], env, stderr: 'inherit' });
    }
    case 'http':
      return new StreamableHTTPClientTransport(new URL(target));
    case 'sse':
      return new SSEClientTransport(new URL(target));
    default:
      throw new Error(`unknown transport ${show(kind)}: want stdio, http or sse`);
  }
}

// structured returns a successful result's structuredContent.
function structured(tool, res) {
  assert(!res.isError, `${tool}: tool error: ${show(res.content)}`);
  assert(res.structuredContent && typeof res.structuredContent === 'object', `${tool}: no structuredContent: ${show(res)}`);
  return res.structuredContent;
}

async function main() {
  const [kind, target, sourceURL, sourceMD5, sizeArg] = process.argv.slice(2);
  assert(kind && target && sourceURL && /^[0-9a-f]{32}$/.test(sourceMD5 ?? '') && /^\d+$/.test(sizeArg ?? ''),
    'usage: node client.mjs <stdio|http|sse> <target> <sourceURL> <md5hex> <sizeBytes>');
  const size = Number(sizeArg);

  const client = new Client({ name: 'filestage-interop-ts', version: '1.0.0' });
  await client.connect(transportFor(kind, target));
  try {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    for (const want of ['request_presigned_upload', 'stage_connector_file']) {
      assert(names.includes(want), `listTools: ${want} missing from ${show(names)}`);
    }

    const staged = structured('stage_connector_file', await client.callTool({
      name: 'stage_connector_file', arguments: { url: sourceURL, toolSlug: 'GMAIL_SEND_EMAIL' },
    }));
    assert(staged.success === true, `stage: success ${show(staged.success)}`);
    assert(staged.md5 === sourceMD5, `stage: md5 ${show(staged.md5)}, want ${sourceMD5}`);
    assert(typeof staged.mimetype === 'string' && staged.mimetype !== '', `stage: no mimetype in ${show(staged)}`);
    assert(staged.size === size, `stage: size ${show(staged.size)}, want ${size}`);
    assert(typeof staged.s3key === 'string' && staged.s3key !== '', `stage: no s3key in ${show(staged)}`);

    const body = randomBytes(64 << 10);
    const args = {
      toolkit_slug: 'gmail', tool_slug: 'GMAIL_SEND_EMAIL', filename: 'interop.bin',
      mimetype: 'application/octet-stream', md5: md5(body),
    };
    const slot = structured('request_presigned_upload', await client.callTool({ name: 'request_presigned_upload', arguments: args }));
    assert(slot.type === 'new', `presign: type ${show(slot.type)}, want "new"`);
    assert(slot.file_uploadable?.s3key === slot.key, `presign: file_uploadable ${show(slot.file_uploadable)} does not match key ${show(slot.key)}`);
    const put = await fetch(slot.new_presigned_url, { method: slot.method, headers: slot.headers, body });
    const putBody = await put.text();
    assert(put.status === 200, `PUT ${slot.new_presigned_url}: ${put.status} ${putBody}`);

    const again = structured('request_presigned_upload', await client.callTool({ name: 'request_presigned_upload', arguments: args }));
    assert(again.type === 'existing', `presign again: type ${show(again.type)}, want "existing"`);
    assert(again.key === slot.key, `presign again: key ${show(again.key)}, want ${show(slot.key)}`);

    const bad = await client.callTool({ name: 'stage_connector_file', arguments: { url: sourceURL, toolSlug: 'gmail_send_email' } });
    assert(bad.isError === true, `lower-case toolSlug: want a tool error, got ${show(bad)}`);
    const text = (bad.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
    let envelope;
    try {
      envelope = JSON.parse(text);
    } catch (e) {
      throw new Error(`lower-case toolSlug: error text is not JSON (${e.message}): ${text}`);
    }
    assert(envelope?.error?.slug === 'INVALID_ARGUMENT', `lower-case toolSlug: slug ${show(envelope?.error?.slug)}, want INVALID_ARGUMENT: ${text}`);
  } finally {
    await client.close();
  }
  console.log(`ok ${kind}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`client.mjs: ${err?.stack ?? err}`);
    process.exit(1);
  },
);
