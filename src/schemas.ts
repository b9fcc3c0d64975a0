import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import avro from 'avsc';

/** The contracts live in schemas/ at the project root, both when run from src/ (ts-jest) and dist/. */
export function schemasDir(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'schemas');
    if (existsSync(path.join(candidate, 'sync-event.v1.avsc'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(`schemas/ not found above ${__dirname}`);
}

export function readSchemaFile(name: string): string {
  return readFileSync(path.join(schemasDir(), name), 'utf8');
}

export function loadAvroSchema(name: string): avro.schema.RecordType {
  return JSON.parse(readSchemaFile(name)) as avro.schema.RecordType;
}

export const SYNC_EVENT_SCHEMA_FILE = 'sync-event.v1.avsc';
export const TRIGGER_SCHEMA_FILE = 'trigger.v1.avsc';

let syncEventType: avro.Type | undefined;
let triggerType: avro.Type | undefined;

export function syncEventAvroType(): avro.Type {
  syncEventType ??= avro.Type.forSchema(loadAvroSchema(SYNC_EVENT_SCHEMA_FILE));
  return syncEventType;
}

export function triggerAvroType(): avro.Type {
  triggerType ??= avro.Type.forSchema(loadAvroSchema(TRIGGER_SCHEMA_FILE));
  return triggerType;
}
