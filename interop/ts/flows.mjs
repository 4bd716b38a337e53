// What every interop client does once it is connected, whatever the
// transport and however it authenticated: list both tools, stage a URL,
// presign an upload (PUT it, presign it again), and get a well-formed tool
// error for a bad argument. client.mjs and oauth.mjs run it.
import { createHash, randomBytes } from 'node:crypto';

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

export const md5 = (buf) => createHash('md5').update(buf).digest('hex');
export const show = (v) => JSON.stringify(v);

// structured returns a successful result's structuredContent.
export function structured(tool, res) {
  assert(!res.isError, `${tool}: tool error: ${show(res.content)}`);
  assert(res.structuredContent && typeof res.structuredContent === 'object', `${tool}: no structuredContent: ${show(res)}`);
  return res.structuredContent;
}

// runFlows drives a connected client: sourceURL serves size bytes whose MD5
// is sourceMD5.
export async function runFlows(client, { sourceURL, sourceMD5, size }) {
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
}
