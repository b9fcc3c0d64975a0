import type { Kafka } from 'kafkajs';
import type { Settings } from '../../../src/config';
import { isSyncError } from '../../../src/errors';
import { createLogger } from '../../../src/observability/logger';

describe('createProducerClient', () => {
  afterEach(() => jest.resetModules());

  test('a librdkafka binding that does not load is a config error naming KAFKA_CLIENT and both ways out', async () => {
    jest.doMock('../../../src/kafka/confluent-producer', () => {
      throw new Error('The module confluent-kafka-javascript.node\nwas compiled against a different Node.js version');
    });
    const { createProducerClient } = await import('../../../src/kafka/producers');
    const settings = { client: 'confluent' } as Settings['kafka'];
    const failure = await createProducerClient(settings, {} as Kafka, createLogger('silent')).catch(
      (err: unknown) => err,
    );
    expect(isSyncError(failure) && failure.code).toBe('SYNC_CONFIG');
    expect(isSyncError(failure) && failure.field).toBe('KAFKA_CLIENT');
    const message = (failure as Error).message;
    expect(message).toContain('was compiled against a different Node.js version');
    expect(message).toContain('make install');
    expect(message).toContain('KAFKA_CLIENT=kafkajs');
  });
});
