// Calls stage_connector_files with the official TypeScript MCP SDK, which
// checks structuredContent against the tool's output schema: one good and
// one bad source, over any transport. Then reads a staged file back: its
// resource_link, its download_url, resources/list and resources/read.
//
//   node stagemany.mjs <stdio|http|sse> <target> <goodURL> <missingURL> <md5hex>
//
// target is as for client.mjs. Prints "ok stagemany <transport>" and exits
// 0, or prints the reason to stderr and exits 1. stagemany_test.go runs it.
import process from 'node:process';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';

import { assert, show, structured } from './flows.mjs';
import { transportFor } from './transports.mjs';

async function main() {
  const [kind, target, goodURL, missingURL, goodMD5] = process.argv.slice(2);
  assert(kind && target && goodURL && missingURL && /^[0-9a-f]{32}$/.test(goodMD5 ?? ''),
    'usage: node stagemany.mjs <stdio|http|sse> <target> <goodURL> <missingURL> <md5hex>');

  const client = new Client({ name: 'filestage-interop-ts', version: '1.0.0' });
  await client.connect(transportFor(kind, target));
  try {
    const { tools } = await client.listTools();
    assert(tools.some((t) => t.name === 'stage_connector_files'), `listTools: no stage_connector_files in ${show(tools.map((t) => t.name))}`);

    const res = await client.callTool({
      name: 'stage_connector_files',
      arguments: {
        toolSlug: 'GMAIL_SEND_EMAIL',
        files: [{ url: goodURL }, { url: missingURL }, { url: 'data:text/plain;base64,aGk=', filename: 'hi.txt' }],
      },
    });
    const out = structured('stage_connector_files', res);
    assert(out.success === false, `success ${show(out.success)}, want false`);
    assert(out.files.length === 2 && out.files.every((d) => Object.keys(d).sort().join() === 'mimetype,name,s3key'),
      `files ${show(out.files)}: want two descriptors {name, mimetype, s3key}`);
    assert(out.files[1].name === 'hi.txt', `files[1] ${show(out.files[1])}, want hi.txt: the order given`);
    assert(out.results[0].md5 === goodMD5 && out.results[1].status === 'failed', `results ${show(out.results)}`);
    assert(out.errors.length === 1 && out.errors[0].index === 1 && out.errors[0].slug === 'SOURCE_HTTP_ERROR',
      `errors ${show(out.errors)}: want index 1, SOURCE_HTTP_ERROR`);
    assert(!out.errors[0].message.includes(missingURL), `errors[0] repeats the URL: ${show(out.errors[0])}`);

    // The staged files read back: a resource_link per file, the download
    // URL itself, and the caller's files as resources (the SDK checks
    // each answer against the protocol's schemas).
    const links = res.content.filter((c) => c.type === 'resource_link');
    assert(links.length === 2 && links[1].uri === out.results[2].download_url && links[1].name === 'hi.txt',
      `resource_link blocks ${show(links)}`);
    const got = await fetch(out.results[2].download_url);
    assert(got.ok && (await got.text()) === 'hi', `GET download_url: ${got.status}`);
    const uri = `filestage://files/${out.files[1].s3key}`;
    const { resources } = await client.listResources();
    const listed = resources.find((r) => r.uri === uri);
    assert(listed && listed.name === 'hi.txt' && listed.mimeType === 'text/plain' && listed.size === 2,
      `listResources: ${show(resources)}, want ${uri}`);
    const read = await client.readResource({ uri });
    assert(read.contents.length === 1 && read.contents[0].blob === 'aGk=', `readResource ${uri}: ${show(read)}`);
  } finally {
    await client.close();
  }
  console.log(`ok stagemany ${kind}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`stagemany.mjs: ${err?.stack ?? err}`);
    process.exit(1);
  },
);
