import { checkMetricSchema } from './observations.schema';

// A check result's figure must read back as it was accepted ("a 202 is a promise").
describe('checkMetricSchema labels', () => {
  it('refuses label names starting with __ (reserved; a __proto__ key vanished from the parsed labels)', () => {
    for (const key of ['__proto__', '__name__', '__x']) {
      const parsed = checkMetricSchema.safeParse(JSON.parse(`{"name":"m","labels":{"${key}":"v","a":"b"},"value":1}`));
      expect({ key, success: parsed.success }).toEqual({ key, success: false });
      if (!parsed.success) expect(parsed.error.issues[0]?.path[0]).toBe('labels');
    }
  });

  it('keeps every accepted label', () => {
    const json = '{"name":"m","labels":{"_a":"1","queue":"orders"},"value":-0}';
    const parsed = checkMetricSchema.parse(JSON.parse(json));
    expect(Object.keys(parsed.labels ?? {})).toEqual(['_a', 'queue']);
  });
});
