import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/config';
import { createRegistry, registerSchemas } from '../../src/kafka/registry';
import { secureServers } from '../helpers/secure';

/**
 * The local Apicurio registry has no basic auth of its own (its auth needs an OIDC server), so
 * the real registry sits behind a TLS-terminating proxy that demands basic auth, the way
 * registries are commonly fronted in production. The registry's answers are its own.
 */
const servers = secureServers();
const USER = 'sync-registry';
const PASSWORD = randomBytes(12).toString('hex');
const seen: Array<string | undefined> = [];

let proxy: Server;
let base: string;

beforeAll(async () => {
  proxy = createServer(
    { key: readFileSync(servers.file('server.key')), cert: readFileSync(servers.file('server.pem')) },
    (req, res) => {
      seen.push(req.headers.authorization);
      const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': 'Basic realm="registry"' });
        res.end(JSON.stringify({ error_code: 401, message: 'Unauthorized' }));
        return;
      }
      const upstream = httpRequest(
        {
          host: '127.0.0.1',
          port: 8081,
          path: req.url,
          method: req.method,
          headers: { ...req.headers, host: '127.0.0.1:8081' },
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      req.pipe(upstream);
    },
  );
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(proxy.address() as AddressInfo).port}/apis/ccompat/v7`;
});
afterAll(async () => {
  proxy.closeAllConnections();
  await new Promise((resolve) => proxy.close(resolve));
});

const topics = () => {
  const id = randomBytes(4).toString('hex');
  return { trigger: `secure-${id}.trigger`, output: `secure-${id}.output` };
};

const registry = (env: Record<string, string>) =>
  createRegistry(
    loadConfig({
      SCHEMA_REGISTRY_URL: base,
      SCHEMA_REGISTRY_USERNAME: USER,
      SCHEMA_REGISTRY_PASSWORD: PASSWORD,
      SCHEMA_REGISTRY_TLS_CA_FILE: servers.file('ca.pem'),
      ...env,
    }).registry,
  );

describe('schema registry over https with basic auth', () => {
  test('registers the schemas with the configured credentials, trusting the configured CA', async () => {
    const ids = await registerSchemas(registry({}), topics());
    expect(ids.syncEventSchemaId).toBeGreaterThan(0);
    expect(ids.triggerSchemaId).toBeGreaterThan(0);
    expect(seen.at(-1)).toBe(`Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`);
  });

  test('a wrong password → SYNC_UNAUTHORIZED naming the variables', async () => {
    await expect(registerSchemas(registry({ SCHEMA_REGISTRY_PASSWORD: 'wrong' }), topics())).rejects.toMatchObject({
      code: 'SYNC_UNAUTHORIZED',
      retriable: false,
      message: expect.stringMatching(/rejected the credentials \(HTTP 401\).*SCHEMA_REGISTRY_PASSWORD/),
    });
  });

  test('a certificate from a CA we do not trust → SYNC_TLS naming SCHEMA_REGISTRY_TLS_CA_FILE', async () => {
    await expect(
      registerSchemas(registry({ SCHEMA_REGISTRY_TLS_CA_FILE: servers.file('rogue-ca.pem') }), topics()),
    ).rejects.toMatchObject({
      code: 'SYNC_TLS',
      retriable: false,
      message: expect.stringMatching(/certificate is not trusted.*SCHEMA_REGISTRY_TLS_CA_FILE/),
    });
  });
});
