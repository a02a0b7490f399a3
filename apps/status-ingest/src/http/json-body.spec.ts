import { InvalidError } from '@fleetwatch/domain';
import { forbiddenKeyPath, parseJsonBody } from './json-body';

const issueOf = (raw: Buffer | string) => {
  try {
    parseJsonBody(Buffer.isBuffer(raw) ? raw : Buffer.from(raw));
  } catch (e) {
    if (e instanceof InvalidError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
};

describe('parseJsonBody', () => {
  it('parses UTF-8 JSON', () => expect(parseJsonBody(Buffer.from('{"a":"é✓"}'))).toEqual({ a: 'é✓' }));

  it.each<[string, Buffer | string, RegExp]>([
    ['empty', '', /body is empty/],
    ['not JSON', '{a:1}', /not valid JSON/],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x61, 0xff, 0x22, 0x7d]), /invalid byte at offset 3/],
    ['a truncated sequence', Buffer.from([0x22, 0xe2, 0x9c]), /not valid UTF-8/],
    ['__proto__', '{"labels":{"__proto__":{"x":1}}}', /labels\.__proto__: key "__proto__" is not allowed/],
    ['an escaped __proto__', '{"m":[{"\\u005f_proto__":1}]}', /m\.0\.__proto__/],
    ['constructor', '{"constructor":{"prototype":1}}', /^constructor:/],
  ])('refuses %s', (_name, raw, message) => expect(issueOf(raw).message).toMatch(message));

  it('walks 100,000 levels without overflowing the stack, in linear time', () => {
    const started = Date.now();
    const v: unknown = JSON.parse('{"a":'.repeat(100_000) + '{"__proto__":1}' + '}'.repeat(100_000));
    expect(forbiddenKeyPath(v)).toHaveLength(100_001);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
