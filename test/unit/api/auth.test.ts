import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportJWK, importPKCS8, SignJWT } from 'jose';
import { createJwtAuthenticator, isAuthFailure, type Authenticator } from '../../../src/api/auth';
import type { JwtSettings } from '../../../src/config';

const SECRET = 'a-test-secret-that-is-at-least-32-bytes-long';
const dir = mkdtempSync(path.join(tmpdir(), 'auth-test-'));

function rsaKeys() {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}
const rsa = rsaKeys();
const otherRsa = rsaKeys();

const settings = (over: Partial<JwtSettings>): JwtSettings => ({
  secret: undefined,
  publicKeyFile: undefined,
  jwksFile: undefined,
  issuer: 'https://id.example.org',
  audience: 'enrolment-sync',
  userClaim: 'sub',
  rolesClaim: 'roles',
  adminRole: 'admin',
  clockToleranceSeconds: 0,
  ...over,
});

interface TokenOptions {
  sub?: string;
  roles?: unknown;
  iss?: string;
  aud?: string;
  exp?: number | string;
  alg?: 'HS256' | 'RS256';
  key?: string;
  kid?: string;
  claims?: Record<string, unknown>;
}

async function token(o: TokenOptions = {}): Promise<string> {
  const alg = o.alg ?? 'HS256';
  const jwt = new SignJWT({ ...(o.roles !== undefined && { roles: o.roles }), ...o.claims })
    .setProtectedHeader({ alg, ...(o.kid && { kid: o.kid }) })
    .setIssuedAt()
    .setIssuer(o.iss ?? 'https://id.example.org')
    .setAudience(o.aud ?? 'enrolment-sync')
    .setExpirationTime(o.exp ?? '5m');
  if (o.sub !== null) jwt.setSubject(o.sub ?? 'user-1');
  const key =
    alg === 'HS256' ? new TextEncoder().encode(o.key ?? SECRET) : await importPKCS8(o.key ?? rsa.privatePem, 'RS256');
  return jwt.sign(key);
}

const bearer = (t: string): string => `Bearer ${t}`;

describe('JWT authentication', () => {
  let hs: Authenticator;
  beforeAll(async () => {
    hs = await createJwtAuthenticator(settings({ secret: SECRET }));
  });

  test('a valid HS256 token: the subject is the user, no admin role', async () => {
    expect(await hs(bearer(await token()))).toEqual({ userId: 'user-1', admin: false });
  });

  test('the admin role, as an array or a space-separated string', async () => {
    expect(await hs(bearer(await token({ roles: ['reader', 'admin'] })))).toEqual({ userId: 'user-1', admin: true });
    expect(await hs(bearer(await token({ roles: 'reader admin' })))).toEqual({ userId: 'user-1', admin: true });
    expect(await hs(bearer(await token({ roles: ['administrator'] })))).toMatchObject({ admin: false });
  });

  test('a nested roles claim (Keycloak realm_access.roles) and another user claim', async () => {
    const kc = await createJwtAuthenticator(
      settings({ secret: SECRET, rolesClaim: 'realm_access.roles', userClaim: 'preferred_username' }),
    );
    const t = await token({ claims: { realm_access: { roles: ['admin'] }, preferred_username: 'alice' } });
    expect(await kc(bearer(t))).toEqual({ userId: 'alice', admin: true });
  });

  const refused: Array<[string, () => Promise<string | undefined>, RegExp]> = [
    ['no header', async () => undefined, /bearer token missing/],
    ['not a bearer token', async () => 'Basic dXNlcjpwYXNz', /not a bearer token/],
    ['garbage', async () => 'Bearer not.a.jwt', /token rejected/],
    ['expired', async () => bearer(await token({ exp: Math.floor(Date.now() / 1000) - 60 })), /token expired/],
    ['signed with another secret', async () => bearer(await token({ key: 'x'.repeat(40) })), /signature/],
    ['wrong audience', async () => bearer(await token({ aud: 'another-service' })), /aud claim rejected/],
    ['wrong issuer', async () => bearer(await token({ iss: 'https://evil.example.org' })), /iss claim rejected/],
    ['RS256 where HS256 is configured', async () => bearer(await token({ alg: 'RS256' })), /algorithm/],
    [
      'alg none',
      async () => {
        const head = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
        const body = Buffer.from(
          JSON.stringify({ sub: 'u', iss: 'https://id.example.org', aud: 'enrolment-sync', exp: 9999999999 }),
        ).toString('base64url');
        return `Bearer ${head}.${body}.`;
      },
      /token rejected|algorithm/,
    ],
    ['no subject', async () => bearer(await token({ sub: null as unknown as string })), /no sub claim/],
  ];
  test.each(refused)('refused: %s → 401 with a reason', async (_name, header, reason) => {
    const result = await hs(await header());
    expect(isAuthFailure(result)).toBe(true);
    expect(result).toMatchObject({ status: 401, reason: expect.stringMatching(reason) });
  });

  test('RS256 with a public key file: valid accepted, another key refused', async () => {
    const file = path.join(dir, 'public.pem');
    writeFileSync(file, rsa.publicPem);
    const rs = await createJwtAuthenticator(settings({ publicKeyFile: file }));
    expect(await rs(bearer(await token({ alg: 'RS256' })))).toEqual({ userId: 'user-1', admin: false });
    expect(await rs(bearer(await token({ alg: 'RS256', key: otherRsa.privatePem })))).toMatchObject({
      status: 401,
      reason: expect.stringMatching(/signature/),
    });
    // An HS256 token "signed" with the public key text must not pass (algorithm confusion).
    expect(await rs(bearer(await token({ alg: 'HS256', key: rsa.publicPem })))).toMatchObject({ status: 401 });
  });

  test('a JWKS file: the key is picked by kid', async () => {
    const jwk = await exportJWK((await import('node:crypto')).createPublicKey(rsa.publicPem));
    const file = path.join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [{ ...jwk, kid: 'k1', alg: 'RS256', use: 'sig' }] }));
    const jwks = await createJwtAuthenticator(settings({ jwksFile: file }));
    expect(await jwks(bearer(await token({ alg: 'RS256', kid: 'k1' })))).toEqual({ userId: 'user-1', admin: false });
    expect(await jwks(bearer(await token({ alg: 'RS256', kid: 'k2', key: otherRsa.privatePem })))).toMatchObject({
      status: 401,
    });
  });

  test('a key file that is not a key is a configuration error naming the variable', async () => {
    const file = path.join(dir, 'not-a-key.pem');
    writeFileSync(file, 'hello');
    await expect(createJwtAuthenticator(settings({ publicKeyFile: file }))).rejects.toMatchObject({
      code: 'SYNC_CONFIG',
      message: expect.stringContaining('API_JWT_PUBLIC_KEY_FILE'),
    });
  });
});
