// How the interop clients reach filestage: its binary over stdio, or an
// endpoint URL over streamable HTTP or SSE.
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { show } from './flows.mjs';

export function transportFor(kind, target) {
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
