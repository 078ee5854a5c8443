// A real, certified OpenID Provider (panva/oidc-provider) for the console's browser tests.
// Usage: node oidc_provider.mjs CONFIG_JSON
//   CONFIG_JSON: {"node_modules": DIR, "port": 0, "clients": [{client_id, client_secret?, redirect_uris}], "users": {login: {roles, name}}}
// Prints "READY <issuer>" once listening on 127.0.0.1. Its built-in development interactions
// (login form: any password; then a consent screen) are the sign-in pages the tests click through.
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const config = JSON.parse(process.argv[2]);
// The package lives under the project's .tools/node_modules (CONFIG_JSON.node_modules).
const entry = path.join(config.node_modules, 'oidc-provider', 'lib', 'index.js');
const { default: Provider } = await import(pathToFileURL(entry).href);
const users = config.users || {};

const server = http.createServer();
await new Promise((resolve) => { server.listen(config.port || 0, '127.0.0.1', resolve); });

const port = server.address().port;
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    grant_types: ['authorization_code'], response_types: ['code'],
    token_endpoint_auth_method: c.client_secret ? 'client_secret_basic' : 'none', ...c,
  })),
  claims: { openid: ['sub'], profile: ['name', 'preferred_username', 'roles'], email: ['email'] },
  conformIdTokenClaims: false, // put the scope's claims (roles) in the ID token itself
  pkce: { required: () => true },
  cookies: { keys: ['test-only-cookie-key'] },
  ttl: { IdToken: 600, AccessToken: 600, AuthorizationCode: 60, Session: 3600, Interaction: 600, Grant: 3600 },
  async findAccount(ctx, id) {
    const user = users[id] || { roles: [] };
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, name: user.name || id, email: `${id}@example.com`, roles: user.roles || [] };
      },
    };
  },
});
server.on('request', provider.callback());
process.stdout.write(`READY ${issuer}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
