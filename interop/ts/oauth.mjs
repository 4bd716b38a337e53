// Drives filestage, started as an OAuth 2.1 resource server, with the
// official TypeScript MCP SDK's own OAuth support: the SDK gets the 401,
// discovers the authorization server from it alone (RFC 9728 protected
// resource metadata, then the server's metadata), sends the user to
// authorize (authorization code with PKCE), exchanges the code, and then
// connects with the token. Nothing here knows the issuer.
//
//   node oauth.mjs <http|sse> <endpointURL> <sourceURL> <md5hex> <sizeBytes> <clientId> <clientSecret> <redirectURI>
//
// endpointURL is http://127.0.0.1:PORT/mcp or http://127.0.0.1:PORT/sse;
// the client is pre-registered (client_secret_basic) with redirectURI.
// The "user agent" is the caller: this prints one line
//   AUTHORIZE <authorization URL>
// and reads one line from stdin, the URL the authorization server finally
// redirected to (redirectURI?code=…&state=…). Then it prints
//   TOKEN {"aud":…,"scp":…,…}   (the access token's claims, for the log)
//   ok oauth <http|sse>
// and exits 0, or prints the reason to stderr and exits 1.
// interop_test.go (TestTypeScriptOAuth) runs it against Ory Hydra.
import { randomBytes } from 'node:crypto';
import process from 'node:process';
import readline from 'node:readline';

import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { assert, runFlows, show } from './flows.mjs';

const usage = 'usage: node oauth.mjs <http|sse> <endpointURL> <sourceURL> <md5hex> <sizeBytes> <clientId> <clientSecret> <redirectURI>';

// requests is every request the SDK made to filestage's origin, in order.
const requests = [];

// recordingFetch is the transports' fetch (the SDK also uses it for its
// discovery and token requests): it notes what went to filestage and what
// came back, so that the test can tell the server really refused the
// requests that had no token.
function recordingFetch(origin) {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers = new Headers(input instanceof Request ? input.headers : undefined);
    new Headers(init?.headers).forEach((v, k) => headers.set(k, v));
    const res = await fetch(input, init);
    if (url.origin === origin) {
      requests.push({
        method: init?.method ?? (input instanceof Request ? input.method : 'GET'),
        path: url.pathname,
        authorized: headers.has('authorization'),
        status: res.status,
        wwwAuthenticate: res.headers.get('www-authenticate'),
      });
    }
    return res;
  };
}

let stdinLines;

// readLine returns the next line of stdin.
async function readLine() {
  stdinLines ??= readline.createInterface({ input: process.stdin, terminal: false })[Symbol.asyncIterator]();
  const { value, done } = await stdinLines.next();
  if (done) throw new Error('stdin ended before the redirect URL came');
  return value.trim();
}

// Provider is an in-memory OAuthClientProvider for a pre-registered
// confidential client.
class Provider {
  constructor({ endpoint, clientId, clientSecret, redirectURI }) {
    this.endpoint = endpoint;
    this.redirectURI = redirectURI;
    this.client = { client_id: clientId, client_secret: clientSecret, token_endpoint_auth_method: 'client_secret_basic' };
    this.authorizations = 0;
  }

  get redirectUrl() {
    return this.redirectURI;
  }

  get clientMetadata() {
    return {
      client_name: 'filestage-interop-ts',
      redirect_uris: [this.redirectURI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    };
  }

  state() {
    this.lastState = randomBytes(16).toString('hex');
    return this.lastState;
  }

  clientInformation() {
    return this.client;
  }

  // The SDK stamps the client information with the authorization server it
  // first presented it to.
  saveClientInformation(info) {
    this.client = info;
  }

  tokens() {
    return this.savedTokens;
  }

  saveTokens(tokens) {
    this.savedTokens = tokens;
  }

  saveCodeVerifier(v) {
    this.verifier = v;
  }

  codeVerifier() {
    if (!this.verifier) throw new Error('no PKCE code verifier saved');
    return this.verifier;
  }

  saveDiscoveryState(s) {
    this.discovery = s;
  }

  discoveryState() {
    return this.discovery;
  }

  // The client is pre-registered: there is nothing to register again, so
  // its information stays and a refusal of it surfaces as the error.
  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'tokens') this.savedTokens = undefined;
    if (scope === 'all' || scope === 'verifier') this.verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this.discovery = undefined;
  }

  // resourceMetadata fetches the RFC 9728 document the 401 named (or, if
  // it named none, the endpoint's path-suffixed well-known URL).
  async resourceMetadata() {
    const challenge = requests.find((r) => r.status === 401)?.wwwAuthenticate ?? '';
    const named = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
    const url = named ?? new URL('/.well-known/oauth-protected-resource/mcp', this.endpoint).href;
    const res = await fetch(url);
    const body = await res.text();
    assert(res.status === 200, `GET ${url}: ${res.status} ${body}`);
    const prm = JSON.parse(body);
    assert(typeof prm.resource === 'string' && Array.isArray(prm.scopes_supported) && prm.scopes_supported.length > 0,
      `${url}: want resource and scopes_supported in ${body}`);
    return prm;
  }

  async redirectToAuthorization(authorizationURL) {
    this.authorizations++;
    const prm = await this.resourceMetadata();
    this.prm = prm;
    // The SDK asks for the resource by RFC 8707's resource parameter, which
    // Ory Hydra (v2.3.0) ignores: only its own audience parameter puts a
    // value into the token's aud, and filestage wants aud to hold the
    // resource. And the scope requested should be what the resource offers
    // (PRM scopes_supported); SDK 1.32.2 already takes it from the 401's
    // scope or the PRM (SEP-835), older SDKs sent their own configured
    // scope, so it is set here from the PRM either way.
    const sdkScope = authorizationURL.searchParams.get('scope');
    authorizationURL.searchParams.set('audience', prm.resource);
    authorizationURL.searchParams.set('scope', prm.scopes_supported.join(' '));
    if (sdkScope !== authorizationURL.searchParams.get('scope')) {
      console.error(`oauth.mjs: the SDK asked for scope ${show(sdkScope)}; asking for ${show(authorizationURL.searchParams.get('scope'))}`);
    }
    console.log(`AUTHORIZE ${authorizationURL.href}`);
    this.callback = await readLine();
  }
}

function transportFor(kind, endpoint, provider) {
  const opts = { authProvider: provider, fetch: recordingFetch(endpoint.origin) };
  switch (kind) {
    case 'http':
      return new StreamableHTTPClientTransport(endpoint, opts);
    case 'sse':
      return new SSEClientTransport(endpoint, opts);
    default:
      throw new Error(`unknown transport ${show(kind)}: want http or sse`);
  }
}

// claims decodes a JWT's payload without checking it.
function claims(jwt) {
  const parts = String(jwt).split('.');
  assert(parts.length === 3, `the access token is not a JWT: ${String(jwt).slice(0, 20)}…`);
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
}

// refused checks that filestage answers a request with 401 and a Bearer
// challenge (with error="invalid_token" if wantError).
async function refused(what, url, init, wantError) {
  const res = await fetch(url, init);
  await res.body?.cancel();
  const challenge = res.headers.get('www-authenticate') ?? '';
  assert(res.status === 401, `${what}: ${res.status}, want 401`);
  assert(/^Bearer\b/i.test(challenge) && challenge.includes('resource_metadata="'), `${what}: WWW-Authenticate ${show(challenge)}`);
  if (wantError) assert(challenge.includes('error="invalid_token"'), `${what}: WWW-Authenticate ${show(challenge)}, want error="invalid_token"`);
}

async function main() {
  const [kind, endpointArg, sourceURL, sourceMD5, sizeArg, clientId, clientSecret, redirectURI] = process.argv.slice(2);
  assert((kind === 'http' || kind === 'sse') && endpointArg && sourceURL && /^[0-9a-f]{32}$/.test(sourceMD5 ?? '') &&
    /^\d+$/.test(sizeArg ?? '') && clientId && clientSecret && redirectURI, usage);
  const size = Number(sizeArg);
  const endpoint = new URL(endpointArg);

  const provider = new Provider({ endpoint, clientId, clientSecret, redirectURI });

  // First attempt: no token. The server must refuse it, and the SDK then
  // runs discovery and sends the user to authorize.
  const first = transportFor(kind, endpoint, provider);
  let firstErr;
  const probe = new Client({ name: 'filestage-interop-ts', version: '1.0.0' });
  try {
    await probe.connect(first);
  } catch (e) {
    firstErr = e;
  }
  if (!firstErr) {
    await probe.close();
    throw new Error(`the first connect, without a token, succeeded: the server accepted requests without authentication (${show(requests)})`);
  }
  if (!(firstErr instanceof UnauthorizedError)) {
    throw new Error(`the first connect: want UnauthorizedError, got ${firstErr?.stack ?? firstErr} (requests ${show(requests)})`);
  }
  const challenged = requests[0];
  assert(challenged && !challenged.authorized && challenged.status === 401 && challenged.path === endpoint.pathname,
    `the first request to filestage: want one without a token to ${endpoint.pathname} refused with 401, got ${show(challenged)}`);
  assert(/^Bearer\b/i.test(challenged.wwwAuthenticate ?? '') && /resource_metadata="[^"]+"/.test(challenged.wwwAuthenticate) &&
    /scope="[^"]+"/.test(challenged.wwwAuthenticate), `the 401's WWW-Authenticate: ${show(challenged.wwwAuthenticate)}`);
  assert(provider.authorizations === 1 && provider.callback, `redirectToAuthorization: called ${provider.authorizations} times`);

  // The SDK found the authorization server itself, from the 401.
  assert(provider.discovery?.authorizationServerUrl === provider.prm.authorization_servers?.[0],
    `the SDK used the authorization server ${show(provider.discovery?.authorizationServerUrl)}, not the PRM's ${show(provider.prm.authorization_servers)}`);

  const back = new URL(provider.callback);
  const err = back.searchParams.get('error');
  assert(!err, `authorization refused: ${err}: ${back.searchParams.get('error_description')}`);
  assert(provider.lastState && back.searchParams.get('state') === provider.lastState,
    `state ${show(back.searchParams.get('state'))} in the redirect, want ${show(provider.lastState)}`);
  const code = back.searchParams.get('code');
  assert(code, `no code in the redirect ${provider.callback}`);
  await first.finishAuth(code);
  await first.close();

  const token = provider.tokens()?.access_token;
  assert(token, `finishAuth saved no access token: ${show(provider.tokens())}`);
  const c = claims(token);
  console.log(`TOKEN ${show({ iss: c.iss, aud: c.aud, scp: c.scp, scope: c.scope, client_id: c.client_id, sub: c.sub })}`);

  // Second attempt, a fresh transport with the same provider: the token.
  const mark = requests.length;
  const transport = transportFor(kind, endpoint, provider);
  const client = new Client({ name: 'filestage-interop-ts', version: '1.0.0' });
  await client.connect(transport);
  try {
    await runFlows(client, { sourceURL, sourceMD5, size });

    const after = requests.slice(mark);
    assert(after.length > 0 && after.every((r) => r.authorized && r.status !== 401),
      `with the token, every request should carry it and none be refused: ${show(after)}`);

    // The same endpoints, without the token or with a bad one, are refused.
    if (kind === 'http') {
      const init = (auth) => ({
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...auth },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      assert(transport.sessionId, 'no session id after connecting');
      await refused('POST /mcp without a token', endpoint, init({ 'mcp-session-id': transport.sessionId }), false);
      await refused('POST /mcp with a bad token', endpoint, init({ 'mcp-session-id': transport.sessionId, authorization: 'Bearer not-a-token' }), true);
    } else {
      await refused('GET /sse without a token', endpoint, { headers: { accept: 'text/event-stream' } }, false);
      await refused('GET /sse with a bad token', endpoint, { headers: { accept: 'text/event-stream', authorization: 'Bearer not-a-token' } }, true);
      const messages = transport._endpoint; // where this session posts (SSEClientTransport keeps it private)
      assert(messages instanceof URL, 'no message endpoint after connecting');
      await refused(`POST ${messages.pathname} without a token`, messages, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      }, false);
    }
  } finally {
    await client.close();
  }
  console.log(`ok oauth ${kind}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`oauth.mjs: ${err?.stack ?? err}`);
    process.exit(1);
  },
);
