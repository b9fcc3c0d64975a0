import { SignJWT } from 'jose';
import { createTestContext, type TestContext } from './context';

/**
 * The API with JWT authentication on, as the tests run it: one HS256 key, issuer and audience,
 * and tokens signed for them (or, to be refused, for something else).
 */
const SECRET = 'an-integration-test-secret-of-32-bytes-or-more';
const ISSUER = 'https://id.example.org/realms/sunbird';
const AUDIENCE = 'enrolment-sync';

/** A test context whose API checks bearer tokens against the key `token` signs with. */
export function createJwtTestContext(env: Record<string, string> = {}): Promise<TestContext> {
  return createTestContext({
    API_AUTH: 'jwt',
    API_JWT_SECRET: SECRET,
    API_JWT_ISSUER: ISSUER,
    API_JWT_AUDIENCE: AUDIENCE,
    ...env,
  });
}

/** A token for `sub` valid for five minutes; each option makes it one the API must refuse or treat otherwise. */
export function token(
  sub: string,
  o: { roles?: string[]; aud?: string; exp?: number | string; secret?: string } = {},
): Promise<string> {
  return new SignJWT({ roles: o.roles ?? [] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuer(ISSUER)
    .setAudience(o.aud ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(o.exp ?? '5m')
    .sign(new TextEncoder().encode(o.secret ?? SECRET));
}
