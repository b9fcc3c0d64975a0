import { Agent } from 'node:https';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { Settings } from '../config';
import { SyncError } from '../errors';
import { loadAvroSchema, SYNC_EVENT_SCHEMA_FILE, TRIGGER_SCHEMA_FILE } from '../schemas';
import { describeSecurityFailure, readTlsMaterial } from '../util/tls';

/**
 * A Confluent-compatible registry client. Basic auth from SCHEMA_REGISTRY_USERNAME/_PASSWORD;
 * an https URL is checked against SCHEMA_REGISTRY_TLS_CA_FILE (or the system CAs), with an
 * optional client certificate. A bare URL (string) is the plain local default.
 */
export function createRegistry(registry: string | Settings['registry']): SchemaRegistry {
  const settings: Settings['registry'] =
    typeof registry === 'string'
      ? { url: registry, username: undefined, password: undefined, tls: undefined }
      : registry;
  return new SchemaRegistry({
    host: settings.url,
    retry: { retries: 2, initialRetryTimeInSecs: 0.2 },
    ...(settings.username !== undefined && {
      auth: { username: settings.username, password: settings.password ?? '' },
    }),
    ...(settings.tls && { agent: new Agent({ keepAlive: true, ...readTlsMaterial(settings.tls, 'SCHEMA_REGISTRY') }) }),
  });
}

/** Registry failures: rejected credentials and failed TLS are named and not retried; the rest is retriable. */
export function translateRegistryError(err: unknown, what: string): SyncError {
  const status = (err as { status?: unknown } | null)?.status;
  if (status === 401 || status === 403) {
    return new SyncError(
      'SYNC_UNAUTHORIZED',
      `${what}: the schema registry rejected the credentials (HTTP ${String(status)}); check SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD`,
      { retriable: false, cause: err },
    );
  }
  const security = describeSecurityFailure(err, 'the schema registry', {
    credentials: 'SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD',
    tlsPrefix: 'SCHEMA_REGISTRY',
  });
  if (security) return new SyncError(security.code, `${what}: ${security.message}`, { retriable: false, cause: err });
  return new SyncError('SYNC_REGISTRY_UNAVAILABLE', `${what}: ${(err as Error).message}`, {
    retriable: true,
    cause: err,
  });
}

export interface RegisteredSchemas {
  syncEventSchemaId: number;
  triggerSchemaId: number;
}

/** Registers our schemas under `<topic>-value` (idempotent: the registry returns the existing id). */
export async function registerSchemas(
  registry: SchemaRegistry,
  topics: { trigger: string; output: string },
): Promise<RegisteredSchemas> {
  try {
    const syncEvent = await registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(loadAvroSchema(SYNC_EVENT_SCHEMA_FILE)) },
      { subject: `${topics.output}-value` },
    );
    const trigger = await registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(loadAvroSchema(TRIGGER_SCHEMA_FILE)) },
      { subject: `${topics.trigger}-value` },
    );
    return { syncEventSchemaId: syncEvent.id, triggerSchemaId: trigger.id };
  } catch (err) {
    throw translateRegistryError(err, 'schema registration failed');
  }
}
