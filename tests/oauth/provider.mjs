// A real OpenID Provider for the tests: npm oidc-provider v9 with its dev
// login/consent pages.  argv[2] is a JSON config: {issuer, port, clients}.
// Login "<name>" signs in as sub=<name> with email <name>@example.com,
// verified; "unverified-<name>" gets the same email with email_verified false.
import http from 'node:http';
import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2]);

function accountClaims(id) {
  const unverified = id.startsWith('unverified-');
  const local = unverified ? id.slice('unverified-'.length) : id;
  return { sub: id, email: `${local}@example.com`, email_verified: !unverified, name: local };
}

const provider = new Provider(config.issuer, {
  clients: config.clients,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  conformIdTokenClaims: false,
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  cookies: { keys: ['gatepass-test-cookie-key-0123456789'] },
  findAccount: async (ctx, id) => ({
    accountId: id,
    async claims() { return accountClaims(id); },
  }),
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const handler = provider.callback();
for (const host of ['127.0.0.1', '::1']) {
  const server = http.createServer(handler);
  server.on('error', (err) => { if (host === '127.0.0.1') throw err; });
  server.listen(config.port, host);
}
console.log(`listening ${config.issuer}`);
