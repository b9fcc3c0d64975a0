import { registerCompressionCodecs } from '../../src/kafka/compression-codecs';

// The producers write lz4 by default (KAFKA_COMPRESSION): every kafkajs consumer a test opens,
// with or without the runtime's modules loaded, reads it (and snappy, and zstd) as the runtime's
// own consumers do.
registerCompressionCodecs();
