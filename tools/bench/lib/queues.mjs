// Which queues hold the aggregator's observations, and how many messages they hold, without the
// management plugin: `rabbitmqctl list_queues` finds them by name prefix (one queue, a bulk queue,
// N sharded queues: whatever the aggregator declared); where rabbitmqctl cannot be run, known names
// and `<prefix>.shard-NN` / `<prefix>-shard-NN` are probed over AMQP. Depths during a run are read
// over AMQP (queue.declare passive: ready messages), which costs the broker next to nothing.
import { spawnSync } from 'node:child_process';

export const OBSERVATIONS_PREFIX = 'fleetwatch.aggregator.observations';

/** `rabbitmqctl list_queues` of one vhost as objects, or null where rabbitmqctl is not usable. */
export function listQueues(vhost, columns = ['name', 'type', 'messages_ready', 'messages_unacknowledged']) {
  const r = spawnSync('rabbitmqctl', ['list_queues', '-p', vhost, ...columns, '--formatter', 'json', '-q'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  if (r.status !== 0 || !r.stdout) return null;
  try {
    return JSON.parse(r.stdout);
  } catch {
    return null;
  }
}

/** Does the queue exist? A passive declare of a missing queue closes the channel, so each probe gets its own. */
async function exists(conn, name) {
  const ch = await conn.createChannel();
  ch.on('error', () => undefined);
  try {
    await ch.checkQueue(name);
    await ch.close().catch(() => undefined);
    return true;
  } catch {
    return false;
  }
}

/**
 * The observation queues of a vhost (dead-letter queues apart), their type, and how they were found.
 * `explicit` (names) skips discovery.
 */
export async function discoverObservationQueues(conn, vhost, { prefix = OBSERVATIONS_PREFIX, explicit = [] } = {}) {
  if (explicit.length)
    return { queues: explicit, deadLetter: explicit.map((q) => `${q}.dlq`), types: {}, via: 'given' };
  const listed = listQueues(vhost);
  if (listed) {
    const mine = listed.filter((q) => q.name.startsWith(prefix)).sort((a, b) => a.name.localeCompare(b.name));
    return {
      queues: mine.filter((q) => !q.name.endsWith('.dlq')).map((q) => q.name),
      deadLetter: mine.filter((q) => q.name.endsWith('.dlq')).map((q) => q.name),
      types: Object.fromEntries(mine.map((q) => [q.name, q.type])),
      via: 'rabbitmqctl',
    };
  }
  const found = [];
  for (const name of [prefix, `${prefix}-bulk`]) if (await exists(conn, name)) found.push(name);
  for (const sep of ['.shard-', '-shard-', '.']) {
    for (let i = 0; i < 256; i++) {
      const candidates = [`${prefix}${sep}${String(i).padStart(2, '0')}`, `${prefix}${sep}${i}`];
      let hit = null;
      for (const c of new Set(candidates)) if (await exists(conn, c)) hit = c;
      if (!hit) break;
      found.push(hit);
    }
  }
  const deadLetter = [];
  for (const q of found) if (await exists(conn, `${q}.dlq`)) deadLetter.push(`${q}.dlq`);
  return { queues: found, deadLetter, types: {}, via: 'AMQP probes (rabbitmqctl unavailable)' };
}

/** Ready messages per queue (AMQP passive declare); a missing queue reads as null. */
export async function readyDepths(conn, names) {
  const ch = await conn.createChannel();
  let broken = false;
  ch.on('error', () => (broken = true));
  const out = {};
  for (const name of names) {
    if (broken) {
      out[name] = null;
      continue;
    }
    try {
      out[name] = (await ch.checkQueue(name)).messageCount;
    } catch {
      out[name] = null;
    }
  }
  if (!broken) await ch.close().catch(() => undefined);
  return out;
}

/** Ready and unacked messages per queue via rabbitmqctl (null where it is not usable). */
export function fullDepths(vhost, names) {
  const listed = listQueues(vhost);
  if (!listed) return null;
  const want = new Set(names);
  return Object.fromEntries(
    listed
      .filter((q) => want.has(q.name))
      .map((q) => [q.name, { ready: q.messages_ready, unacked: q.messages_unacknowledged }]),
  );
}
