import { readFileSync } from 'node:fs';
import { createLocalJWKSet, errors, importSPKI, importX509, jwtVerify, type JWTPayload, type KeyLike } from 'jose';
import type { JwtSettings } from '../config';
import { SyncError } from '../errors';

/** Who is calling, as the token says. */
export interface Principal {
  userId: string;
  admin: boolean;
}

export type AuthFailure = { status: 401; reason: string };

/** Checks an Authorization header; never throws for a bad token, only for a broken configuration. */
export type Authenticator = (authorization: string | undefined) => Promise<Principal | AuthFailure>;

export function isAuthFailure(value: Principal | AuthFailure): value is AuthFailure {
  return 'status' in value;
}

type KeyInput = KeyLike | Uint8Array | ReturnType<typeof createLocalJWKSet>;

/** The one key the settings name, and the algorithms it may sign with (never `none`, never a mix). */
async function loadKey(settings: JwtSettings): Promise<{ key: KeyInput; algorithms: string[] }> {
  if (settings.secret !== undefined) {
    return { key: new TextEncoder().encode(settings.secret), algorithms: ['HS256'] };
  }
  const file = settings.publicKeyFile ?? settings.jwksFile;
  if (file === undefined) {
    throw new SyncError('SYNC_CONFIG', 'API_AUTH=jwt needs a key', { retriable: false, field: 'API_AUTH' });
  }
  const variable = settings.publicKeyFile !== undefined ? 'API_JWT_PUBLIC_KEY_FILE' : 'API_JWT_JWKS_FILE';
  try {
    const text = readFileSync(file, 'utf8');
    if (settings.jwksFile !== undefined) {
      return { key: createLocalJWKSet(JSON.parse(text)), algorithms: ['RS256', 'PS256', 'ES256'] };
    }
    const key = text.includes('BEGIN CERTIFICATE') ? await importX509(text, 'RS256') : await importSPKI(text, 'RS256');
    return { key, algorithms: ['RS256'] };
  } catch (err) {
    throw new SyncError('SYNC_CONFIG', `${variable} '${file}' is not a usable key: ${(err as Error).message}`, {
      retriable: false,
      cause: err,
      field: variable,
    });
  }
}

/** A claim by dotted path ("realm_access.roles"), as roles sit in Keycloak's tokens. */
function claimAt(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function rolesOf(payload: JWTPayload, claim: string): string[] {
  const value = claimAt(payload, claim);
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  if (typeof value === 'string') return value.split(/\s+/).filter((v) => v !== '');
  return [];
}

/** Why a token was refused, in words a client can act on (never the token itself). */
function reasonOf(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `token ${err.claim} claim rejected: ${err.reason}`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'token signature does not verify';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'token signed with an algorithm that is not accepted';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no configured key matches the token';
  if (err instanceof errors.JOSEError) return `token rejected (${err.code})`;
  return 'token rejected';
}

/**
 * Bearer JWTs checked against one configured key (HS256 secret, RS256 public key, or a JWKS
 * file), with issuer, audience and expiry. Admins carry `adminRole` in the roles claim.
 */
export async function createJwtAuthenticator(settings: JwtSettings): Promise<Authenticator> {
  const { key, algorithms } = await loadKey(settings);
  return async (authorization) => {
    const match = /^Bearer[ ]+([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization?.trim() ?? '');
    if (!match) {
      return { status: 401, reason: authorization ? 'Authorization is not a bearer token' : 'bearer token missing' };
    }
    try {
      const verifyOptions = {
        issuer: settings.issuer,
        audience: settings.audience,
        algorithms,
        clockTolerance: settings.clockToleranceSeconds,
        requiredClaims: ['exp'],
      };
      const token = match[1] as string;
      // Two overloads of one call: a key, or a key set (JWKS) that picks the key by `kid`.
      const { payload } =
        typeof key === 'function'
          ? await jwtVerify(token, key, verifyOptions)
          : await jwtVerify(token, key, verifyOptions);
      const userId = claimAt(payload, settings.userClaim);
      if (typeof userId !== 'string' || userId.trim() === '') {
        return { status: 401, reason: `token has no ${settings.userClaim} claim` };
      }
      return { userId, admin: rolesOf(payload, settings.rolesClaim).includes(settings.adminRole) };
    } catch (err) {
      return { status: 401, reason: reasonOf(err) };
    }
  };
}
