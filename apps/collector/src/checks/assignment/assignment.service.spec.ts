import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkInputSchema, TargetIds, type CheckDefinition } from '@fleetwatch/contracts';
import { AssignmentFile } from './assignment-file';
import { AssignmentService, type Assignment, type AssignmentAnswer, type KnownAssignment } from './assignment.service';

// The conditional refresh (assignment.get with `known`): an owner whose head is still what the
// collector holds answers notModified, and nothing is parsed, applied or saved again; an owner
// older than the field refuses it and the collector asks whole from then on; an answer naming
// another version than the one held is never taken as "current".

function check(name: string, version = 1): CheckDefinition {
  const id = randomUUID();
  return {
    ...checkInputSchema.parse({ name, type: 'tcp', host: '127.0.0.1', port: 80 }),
    id,
    targetId: TargetIds.check(id),
    version,
    createdAt: '2026-12-01T00:00:00.000Z',
    updatedAt: '2026-12-01T00:00:00.000Z',
  };
}

/** An owner in memory: its head, and whether it knows `known` (as sync-orchestrator before and after the field). */
class Owner {
  version = 1;
  hash = 'a'.repeat(64);
  checks: CheckDefinition[] = [check('api')];
  knowsKnown = true;
  calls: (KnownAssignment | undefined)[] = [];
  /** Answers notModified for this version/hash whatever is asked (a misbehaving owner). */
  lieWith: KnownAssignment | undefined;

  async fetch(location: string, known?: KnownAssignment): Promise<AssignmentAnswer> {
    this.calls.push(known);
    if (known && !this.knowsKnown)
      throw Object.assign(new Error('params: unrecognized key "known"'), { refused: true });
    if (this.lieWith) return { ...this.lieWith, location, notModified: true };
    if (known && known.version === this.version && known.hash === this.hash)
      return { version: this.version, hash: this.hash, location, notModified: true };
    return { version: this.version, hash: this.hash, location, checks: this.checks };
  }
}

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
let dir: string;
beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'fw-assignment-svc-'))));
afterEach(() => rm(dir, { recursive: true, force: true }));

function service(owner: Owner, file = new AssignmentFile(join(dir, 'assignment.json'))) {
  const applied: Assignment[] = [];
  const svc = new AssignmentService({
    location: 'lab-1',
    file,
    fetch: (location, known) => owner.fetch(location, known),
    isRefusedKnown: (e) => (e as { refused?: boolean }).refused === true,
    apply: (a) => applied.push(a),
    logger: silent,
    refreshIntervalMs: 3_600_000,
  });
  return { svc, applied, file };
}

describe('AssignmentService: conditional refresh', () => {
  it('asks whole first, then with what it holds; an unchanged head sends, applies and saves nothing again', async () => {
    const owner = new Owner();
    const { svc, applied, file } = service(owner);
    await svc.start();
    await svc.settled();
    expect(owner.calls).toEqual([undefined]);
    expect(applied.map((a) => a.checks.map((c) => c.name))).toEqual([['api']]);
    const saved = (await stat(file.path)).mtimeMs;

    svc.refresh('periodic');
    await svc.settled();
    expect(owner.calls[1]).toEqual({ version: 1, hash: 'a'.repeat(64) });
    expect(applied).toHaveLength(1);
    expect((await stat(file.path)).mtimeMs).toBe(saved);
    expect(svc.current).toMatchObject({ version: 1, origin: 'bus' });

    // The head moves: the conditional ask gets the whole new assignment, applied and saved.
    owner.version = 2;
    owner.hash = 'b'.repeat(64);
    owner.checks = [check('api', 2), check('db')];
    svc.refresh('config.changed');
    await svc.settled();
    expect(owner.calls[2]).toEqual({ version: 1, hash: 'a'.repeat(64) });
    expect(applied.map((a) => a.checks.map((c) => c.name))).toEqual([['api'], ['api', 'db']]);
    expect(await file.load()).toMatchObject({ version: 2, hash: 'b'.repeat(64) });
    svc.stop();
  });

  it('an owner whose head went back (its database restored from a backup) is followed: its answer is the truth', async () => {
    const owner = new Owner();
    owner.version = 5;
    const { svc, applied } = service(owner);
    await svc.start();
    await svc.settled();
    // Restored to version 3, which holds other checks; the collector asks with version 5.
    owner.version = 3;
    owner.hash = 'c'.repeat(64);
    owner.checks = [check('db')];
    svc.refresh('periodic');
    await svc.settled();
    expect(owner.calls[1]).toEqual({ version: 5, hash: 'a'.repeat(64) });
    expect(svc.current).toMatchObject({ version: 3, hash: 'c'.repeat(64), origin: 'bus' });
    expect(applied.map((a) => a.checks.map((c) => c.name))).toEqual([['api'], ['db']]);
    svc.stop();
  });

  it('a copy from disk that is still the head becomes current from the bus without being fetched whole', async () => {
    const owner = new Owner();
    const file = new AssignmentFile(join(dir, 'assignment.json'));
    await file.save({
      location: 'lab-1',
      version: 1,
      hash: 'a'.repeat(64),
      receivedAt: new Date().toISOString(),
      checks: owner.checks,
    });
    const { svc, applied } = service(owner, file);
    await svc.start();
    await svc.settled();
    expect(owner.calls).toEqual([{ version: 1, hash: 'a'.repeat(64) }]);
    expect(applied).toHaveLength(1); // the disk copy, once
    expect(svc.current).toMatchObject({ version: 1, origin: 'bus' });
    svc.stop();
  });

  it('an owner that refuses `known` (older) is asked whole, then and from then on', async () => {
    const owner = new Owner();
    const { svc, applied } = service(owner);
    await svc.start();
    await svc.settled();
    owner.knowsKnown = false;
    svc.refresh('periodic');
    await svc.settled();
    svc.refresh('periodic');
    await svc.settled();
    expect(owner.calls).toEqual([undefined, { version: 1, hash: 'a'.repeat(64) }, undefined, undefined]);
    expect(applied).toHaveLength(1); // the same content each time: applied once
    expect(svc.current).toMatchObject({ version: 1, origin: 'bus' });
    svc.stop();
  });

  it('notModified naming another version than the one held is not taken as current: asked whole, no loop', async () => {
    const owner = new Owner();
    const { svc, applied } = service(owner);
    await svc.start();
    await svc.settled();
    owner.version = 2;
    owner.hash = 'b'.repeat(64);
    owner.lieWith = { version: 7, hash: 'c'.repeat(64) };
    // The lie is told to conditional asks only: a whole ask gets the real head.
    const fetch = owner.fetch.bind(owner);
    owner.fetch = async (location, known) => {
      if (!known) owner.lieWith = undefined;
      return fetch(location, known);
    };
    svc.refresh('periodic');
    await svc.settled();
    expect(owner.calls).toEqual([undefined, { version: 1, hash: 'a'.repeat(64) }, undefined]);
    expect(applied.map((a) => a.version)).toEqual([1, 2]);
    svc.stop();
  });
});
