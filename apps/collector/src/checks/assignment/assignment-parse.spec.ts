import { randomUUID } from 'node:crypto';
import { checkInputSchema, TargetIds, type CheckDefinition, type CheckInput } from '@fleetwatch/contracts';
import { AssignmentParser } from './assignment-parse';

function stored(input: CheckInput, version = 1): CheckDefinition {
  const id = randomUUID();
  return {
    ...checkInputSchema.parse(input),
    id,
    targetId: TargetIds.check(id),
    version,
    createdAt: '2026-12-01T00:00:00.000Z',
    updatedAt: `2026-12-01T00:00:0${version}.000Z`,
  };
}

describe('AssignmentParser', () => {
  it('reads the checks the contract accepts and leaves out the others with their reason', () => {
    const good = stored({ name: 'a', type: 'tcp', host: '127.0.0.1', port: 80 });
    const newer = { ...stored({ name: 'b', type: 'tcp', host: '127.0.0.1', port: 81 }), type: 'quantum' };
    const badField = { ...stored({ name: 'c', type: 'tcp', host: '127.0.0.1', port: 82 }), port: 70_000 };
    const noId = { ...good, id: 'nope' };
    const { checks, rejected } = new AssignmentParser().parse([good, newer, badField, noId, good]);
    expect(checks).toEqual([good]);
    expect(rejected.map((r) => r.id)).toEqual([newer.id, badField.id, 'nope', good.id]);
    expect(rejected[1].reason).toMatch(/port/);
    expect(rejected[3].reason).toBe('listed twice');
  });

  it('applies the contract defaults to what it reads', () => {
    const raw = { ...stored({ name: 'd', type: 'http', url: 'http://127.0.0.1/' }) } as Record<string, unknown>;
    delete raw.method;
    delete raw.retries;
    const [check] = new AssignmentParser().parse([raw]).checks;
    expect(check).toMatchObject({ method: 'GET', retries: 0, type: 'http' });
  });

  it('re-validates only checks whose version changed (the same object is reused otherwise)', () => {
    const parser = new AssignmentParser();
    const a = stored({ name: 'a', type: 'tcp', host: '127.0.0.1', port: 80 });
    const b = stored({ name: 'b', type: 'tcp', host: '127.0.0.1', port: 81 });
    const first = parser.parse([a, b]).checks;
    const b2 = { ...b, port: 82, version: 2, updatedAt: '2026-12-01T00:00:09.000Z' };
    const second = parser.parse([a, b2]).checks;
    expect(second[0]).toBe(first[0]);
    expect(second[1]).not.toBe(first[1]);
    expect(second[1]).toMatchObject({ port: 82, version: 2 });
  });
});
