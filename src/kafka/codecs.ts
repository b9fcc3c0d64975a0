import avro from 'avsc';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { RawAvroSchema } from '@kafkajs/confluent-schema-registry/dist/@types';
import { SyncError } from '../errors';

/** The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the Avro body. */
export const CONFLUENT_MAGIC_BYTE = 0;
const CONFLUENT_HEADER_BYTES = 5;

export function isConfluentAvro(bytes: Buffer): boolean {
  return bytes.length >= CONFLUENT_HEADER_BYTES && bytes[0] === CONFLUENT_MAGIC_BYTE;
}

/**
 * Decodes a message that is either JSON or Confluent Avro, told apart by the magic byte (JSON
 * text never starts with a NUL). Returns a plain object; its content is checked by the caller.
 */
export async function decodeJsonOrAvro(
  bytes: Buffer | null,
  registry: SchemaRegistry | undefined,
  readerSchema?: RawAvroSchema,
): Promise<unknown> {
  if (bytes === null || bytes.length === 0) {
    throw new SyncError('SYNC_BAD_TRIGGER', 'empty message value', { retriable: false });
  }
  if (isConfluentAvro(bytes)) {
    if (!registry) {
      throw new SyncError('SYNC_BAD_TRIGGER', 'Avro message but no schema registry is configured', {
        retriable: false,
      });
    }
    try {
      return await registry.decode(bytes, readerSchema ? { AVRO: { readerSchema } } : undefined);
    } catch (err) {
      throw registryDecodeError(err, bytes);
    }
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    throw new SyncError('SYNC_BAD_TRIGGER', 'message is neither Confluent Avro nor UTF-8 JSON', {
      retriable: false,
      cause: err,
    });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SyncError('SYNC_BAD_TRIGGER', `malformed JSON: ${(err as Error).message}`, {
      retriable: false,
      cause: err,
    });
  }
}

function registryDecodeError(err: unknown, bytes: Buffer): SyncError {
  const message = err instanceof Error ? err.message : String(err);
  const schemaId = bytes.readUInt32BE(1);
  // A registry that does not answer is an outage (retry); an unknown id or a body that does not
  // match its schema is bad input (dead-letter).
  const status = (err as { status?: number } | null)?.status;
  const unreachable =
    /ECONNREFUSED|ECONNRESET|ETIMEDOUT|socket hang up|EAI_AGAIN/i.test(message) ||
    (typeof status === 'number' && status >= 500);
  if (unreachable) {
    return new SyncError('SYNC_REGISTRY_UNAVAILABLE', `schema registry unavailable: ${message}`, {
      retriable: true,
      cause: err,
    });
  }
  return new SyncError('SYNC_BAD_TRIGGER', `cannot decode Avro (schema id ${schemaId}): ${message}`, {
    retriable: false,
    cause: err,
  });
}

/** Validates a value against an Avro type and names every offending path. */
export function avroProblems(type: avro.Type, value: unknown): string[] {
  const problems: string[] = [];
  type.isValid(value, {
    errorHook: (path: string[], v: unknown) => {
      problems.push(`${path.join('.') || '(root)'}: ${JSON.stringify(v) ?? String(v)}`);
    },
  });
  return problems;
}

export function confluentFrame(schemaId: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(CONFLUENT_HEADER_BYTES + body.length);
  out[0] = CONFLUENT_MAGIC_BYTE;
  out.writeUInt32BE(schemaId, 1);
  body.copy(out, CONFLUENT_HEADER_BYTES);
  return out;
}
