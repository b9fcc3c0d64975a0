/**
 * The compression codecs kafkajs lacks. Our consumers (input, tasks, the status and checkpoint
 * tables, `watch`, `dlq`) are kafkajs, and kafkajs decodes only gzip: a batch compressed any
 * other way, by us (KAFKA_COMPRESSION=lz4) or by an upstream service writing triggers with
 * snappy, lz4 or zstd, would crash the consumer on every fetch, and the partition would stall
 * behind it. With these every codec Kafka has is read (zstd where node:zlib has it: Node 22.15
 * and later); lz4 is also written.
 */
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import { CompressionCodecs, CompressionTypes } from 'kafkajs';
import { lz4Compress, lz4Decompress } from './lz4';
import { snappyDecompress } from './snappy';

function notWritten(name: string): never {
  throw new Error(`${name}: the producers write lz4, gzip or none (KAFKA_COMPRESSION), not ${name}`);
}

/** zlib's zstd, where this Node has it; the type is declared here for Node 20's typings. */
const zstdDecompress = (zlib as { zstdDecompress?: (b: Buffer, cb: (e: Error | null, r: Buffer) => void) => void })
  .zstdDecompress;

export function registerCompressionCodecs(): void {
  CompressionCodecs[CompressionTypes.LZ4] = () => ({
    compress: async (encoder: { buffer: Buffer }) => lz4Compress(encoder.buffer),
    decompress: async (buffer: Buffer) => lz4Decompress(buffer),
  });
  CompressionCodecs[CompressionTypes.Snappy] = () => ({
    compress: async () => notWritten('snappy'),
    decompress: async (buffer: Buffer) => snappyDecompress(buffer),
  });
  if (zstdDecompress) {
    const decompress = promisify(zstdDecompress);
    CompressionCodecs[CompressionTypes.ZSTD] = () => ({
      compress: async () => notWritten('zstd'),
      decompress: (buffer: Buffer) => decompress(buffer),
    });
  }
}
