import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { SyncError } from '../errors';
import { loadAvroSchema, SYNC_EVENT_SCHEMA_FILE, TRIGGER_SCHEMA_FILE } from '../schemas';

export function createRegistry(url: string): SchemaRegistry {
  return new SchemaRegistry({ host: url, retry: { retries: 2, initialRetryTimeInSecs: 0.2 } });
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
    throw new SyncError('SYNC_REGISTRY_UNAVAILABLE', `schema registration failed: ${(err as Error).message}`, {
      retriable: true,
      cause: err,
    });
  }
}
