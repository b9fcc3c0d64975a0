import { confluentFrame, decodeJsonOrAvro, isConfluentAvro } from '../../../src/kafka/codecs';

describe('trigger wire formats', () => {
  test('the magic byte tells Confluent Avro from JSON', () => {
    expect(isConfluentAvro(confluentFrame(7, Buffer.from([1, 2])))).toBe(true);
    expect(isConfluentAvro(Buffer.from('{"a":1}'))).toBe(false);
    expect(isConfluentAvro(Buffer.from([0, 1]))).toBe(false);
  });

  test('JSON decodes; garbage is bad input, never a crash', async () => {
    await expect(decodeJsonOrAvro(Buffer.from(' {"courseId":"c"}'), undefined)).resolves.toEqual({ courseId: 'c' });
    await expect(decodeJsonOrAvro(null, undefined)).rejects.toMatchObject({ code: 'SYNC_BAD_TRIGGER' });
    await expect(decodeJsonOrAvro(Buffer.from([0xff, 0xfe]), undefined)).rejects.toMatchObject({
      code: 'SYNC_BAD_TRIGGER',
      retriable: false,
    });
    await expect(decodeJsonOrAvro(Buffer.from('{"a":'), undefined)).rejects.toThrow(/malformed JSON/);
    await expect(decodeJsonOrAvro(confluentFrame(1, Buffer.from([2])), undefined)).rejects.toThrow(
      /no schema registry/,
    );
  });
});
