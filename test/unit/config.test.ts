import { loadConfig } from '../../src/config';

describe('loadConfig', () => {
  test('defaults are the single-machine setup', () => {
    const s = loadConfig({});
    expect(s.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(s.cassandra.contactPoints).toEqual(['127.0.0.1:9042']);
    expect(s.registry.url).toBe('http://127.0.0.1:8081/apis/ccompat/v7');
    expect(s.topics.output).toBe('local.batch.enrolment.sync.request');
    expect(s.topics.partitions).toBe(4);
    expect(s.processor.includeInactive).toBe(false);
    expect(s.processor.includeCompleted).toBe(true);
    expect(Object.isFrozen(s.processor)).toBe(true);
  });

  test('the environment prefix names the topics; production addresses come from variables', () => {
    const s = loadConfig({
      SYNC_ENV: 'prod',
      KAFKA_BROKERS: 'k1:9092, k2:9092',
      CASSANDRA_CONTACT_POINTS: 'c1,c2',
      SYNC_INCLUDE_INACTIVE: 'yes',
    });
    expect(s.topics.output).toBe('prod.batch.enrolment.sync.request');
    expect(s.topics.trigger).toBe('prod.enrolment.sync.trigger');
    expect(s.kafka.brokers).toEqual(['k1:9092', 'k2:9092']);
    expect(s.cassandra.contactPoints).toEqual(['c1', 'c2']);
    expect(s.processor.includeInactive).toBe(true);
  });

  test('every problem is reported at once, naming each variable', () => {
    let message = '';
    try {
      loadConfig({
        TOPIC_PARTITIONS: 'many',
        SYNC_EVENT_FORMAT: 'xml',
        SYNC_INCLUDE_INACTIVE: 'maybe',
        CASSANDRA_KEYSPACE: 'bad-name',
      });
    } catch (err) {
      expect((err as { code: string }).code).toBe('SYNC_CONFIG');
      message = (err as Error).message;
    }
    expect(message).toMatch(/TOPIC_PARTITIONS/);
    expect(message).toMatch(/SYNC_EVENT_FORMAT/);
    expect(message).toMatch(/SYNC_INCLUDE_INACTIVE/);
    expect(message).toMatch(/CASSANDRA_KEYSPACE/);
  });
});
