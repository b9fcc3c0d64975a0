import { registerLz4 } from '../../src/kafka/lz4';

// The producers write lz4 by default (KAFKA_COMPRESSION): every kafkajs consumer a test opens,
// with or without the runtime's modules loaded, reads it as the runtime's own consumers do.
registerLz4();
