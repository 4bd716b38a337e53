// Drives filestage with the official TypeScript MCP SDK, to show that a
// client not written in Go can use both tools over every transport.
//
//   node client.mjs <stdio|http|sse> <target> <sourceURL> <md5hex> <sizeBytes>
//
// target is the filestage binary for stdio (it gets FILESTAGE_DATA_DIR and
// FILESTAGE_ALLOW_PRIVATE_URLS from this process's environment), else the
// endpoint URL: http://127.0.0.1:PORT/mcp or http://127.0.0.1:PORT/sse.
// Prints "ok <transport>" and exits 0, or prints the reason to stderr and
// exits 1. interop_test.go runs it. The flows themselves are in flows.mjs,
// which oauth.mjs runs too.
import process from 'node:process';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';

import { assert, runFlows } from './flows.mjs';
import { transportFor } from './transports.mjs';

async function main() {
  const [kind, target, sourceURL, sourceMD5, sizeArg] = process.argv.slice(2);
  assert(kind && target && sourceURL && /^[0-9a-f]{32}$/.test(sourceMD5 ?? '') && /^\d+$/.test(sizeArg ?? ''),
    'usage: node client.mjs <stdio|http|sse> <target> <sourceURL> <md5hex> <sizeBytes>');
  const size = Number(sizeArg);

  const client = new Client({ name: 'filestage-interop-ts', version: '1.0.0' });
  await client.connect(transportFor(kind, target));
  try {
    await runFlows(client, { sourceURL, sourceMD5, size });
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
