import { readFileSync } from 'node:fs';
import type { TlsSettings } from '../config';
import { SyncError } from '../errors';

/** What node:tls wants: the CA to trust (system CAs when absent) and an optional client certificate. */
export interface TlsMaterial {
  ca?: Buffer[];
  cert?: Buffer;
  key?: Buffer;
  passphrase?: string;
  rejectUnauthorized: true;
}

/** Reads the files once, at client creation; a missing or unreadable file is a configuration error. */
export function readTlsMaterial(tls: TlsSettings, prefix: string): TlsMaterial {
  const read = (file: string, variable: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new SyncError('SYNC_CONFIG', `${prefix}_${variable} '${file}' cannot be read: ${(err as Error).message}`, {
        retriable: false,
        cause: err,
        field: `${prefix}_${variable}`,
      });
    }
  };
  return {
    ...(tls.caFile !== undefined && { ca: [read(tls.caFile, 'TLS_CA_FILE')] }),
    ...(tls.certFile !== undefined && { cert: read(tls.certFile, 'TLS_CERT_FILE') }),
    ...(tls.keyFile !== undefined && { key: read(tls.keyFile, 'TLS_KEY_FILE') }),
    ...(tls.keyPassphrase !== undefined && { passphrase: tls.keyPassphrase }),
    rejectUnauthorized: true,
  };
}

// OpenSSL / node:tls codes that mean the peer's certificate was not accepted.
const CERTIFICATE_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
]);

/** Every error in a chain: causes, kafkajs' originalError, cassandra-driver's innerErrors, AggregateErrors. */
export function errorChain(err: unknown): unknown[] {
  const seen = new Set<unknown>();
  const out: unknown[] = [];
  const walk = (e: unknown, depth: number): void => {
    if (e === null || e === undefined || seen.has(e) || depth > 8) return;
    seen.add(e);
    out.push(e);
    if (typeof e !== 'object') return;
    const o = e as { cause?: unknown; originalError?: unknown; innerErrors?: unknown; errors?: unknown };
    walk(o.cause, depth + 1);
    walk(o.originalError, depth + 1);
    if (o.innerErrors && typeof o.innerErrors === 'object') {
      for (const inner of Object.values(o.innerErrors as Record<string, unknown>)) walk(inner, depth + 1);
    }
    if (Array.isArray(o.errors)) for (const inner of o.errors) walk(inner, depth + 1);
  };
  walk(err, 0);
  return out;
}

const field = (e: unknown, name: string): string =>
  typeof e === 'object' && e !== null && name in e ? String((e as Record<string, unknown>)[name]) : '';

/**
 * Recognises the failures an operator must fix rather than wait out: rejected credentials and
 * failed TLS handshakes. Returns a sentence naming the cause and the variables to check.
 */
export function describeSecurityFailure(
  err: unknown,
  server: string,
  vars: { credentials: string; tlsPrefix: string },
): { code: 'SYNC_UNAUTHORIZED' | 'SYNC_TLS'; message: string } | undefined {
  const chain = errorChain(err);
  const unauthorized = (message: string) => ({
    code: 'SYNC_UNAUTHORIZED' as const,
    message: `${server} rejected the credentials (wrong user name or password; check ${vars.credentials}): ${message}`,
  });
  const untrusted = (detail: string) => ({
    code: 'SYNC_TLS' as const,
    message: `TLS with ${server} failed: the server's certificate is not trusted (${detail}); check ${vars.tlsPrefix}_TLS_CA_FILE`,
  });
  const notTls = (detail: string) => ({
    code: 'SYNC_TLS' as const,
    message: `TLS with ${server} failed: the port does not speak TLS (${detail}); check ${vars.tlsPrefix}_TLS and the address`,
  });
  // First the errors that say exactly what they are (by name or OpenSSL code), deepest cause
  // included; their own message is the clearest.
  for (const e of chain) {
    const name = field(e, 'name');
    const code = field(e, 'code');
    if (name === 'KafkaJSSASLAuthenticationError' || name === 'AuthenticationError') {
      return unauthorized(field(e, 'message'));
    }
    if (CERTIFICATE_CODES.has(code)) return untrusted(`${code}: ${field(e, 'message')}`);
    if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') return notTls(code);
  }
  // Then what only the wording tells (an error that lost its code on the way up).
  for (const e of chain) {
    const message = field(e, 'message');
    if (/authentication failed|bad credentials|provided username .* and\/or password are incorrect/i.test(message)) {
      return unauthorized(message);
    }
    if (/certificate|self[- ]signed/i.test(message)) return untrusted(message);
    if (/wrong version number|EPROTO/i.test(message)) return notTls(message);
  }
  return undefined;
}
