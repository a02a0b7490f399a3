import { parseArgs } from 'node:util';
import { BusUnavailableError, errorMessage } from '../errors';
import { redactUrl } from '../logger';
import {
  DeadLetterAdmin,
  type DeadLetterDetail,
  type DeadLetterQueueListing,
  type ReplayResult,
} from './dead-letter-admin';
import type { DeadLetterSummary } from './dead-letter-message';

// The operator's command (`npm run dlq -- …`, or `node dist/libs/messaging/src/dead-letters/dlq-cli.js …`
// where only dist/ is deployed). Runbook: docs/runbooks/dead-letters.md.

/** The services' AMQP_URL default (libs/config). */
export const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

export const DlqExit = { Ok: 0, Failed: 1, Usage: 2, BrokerUnavailable: 3 } as const;

const USAGE = `Usage: npm run dlq -- <command> [options]

Commands:
  list            every dead-letter queue of the site: message count and, per message,
                  id, type, cause, time, deliveries, reason (and api key / update id)
  show ID         every header, property and the body of the dead letter with message id ID
  replay ID       republish it to the queue it came from, then remove it from the DLQ
  replay --all    replay everything (every DLQ, or those named with --queue)

Options:
  --queue Q       a source queue or its DLQ (repeatable); default every DLQ of the site
  --limit N       messages listed per DLQ (default 20)
  --offset N      skip the first N messages of each DLQ when listing
  --json          machine-readable output on stdout
  --url URL       AMQP URL with the site's vhost (default $AMQP_URL, else ${DEFAULT_AMQP_URL})
  --vhost V       use vhost V instead of the URL's
  -h, --help

Exit status: 0 done, 1 not found or replay stopped, 2 usage error, 3 RabbitMQ unreachable.
`;

export interface DlqIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
}

const processIo: DlqIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
};

class UsageError extends Error {}

interface Command {
  name: 'list' | 'show' | 'replay' | 'help';
  id?: string;
  all: boolean;
  queues: string[];
  limit: number;
  offset: number;
  json: boolean;
  url: string;
}

function count(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} wants a whole number ≥ 0, got "${value}"`);
  return n;
}

function urlOf(base: string, vhost: string | undefined): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new UsageError(`not an AMQP URL: ${redactUrl(base)}`);
  }
  if (url.protocol !== 'amqp:' && url.protocol !== 'amqps:')
    throw new UsageError(`not an AMQP URL: ${redactUrl(base)}`);
  if (vhost !== undefined) url.pathname = `/${encodeURIComponent(vhost)}`;
  return url.toString();
}

export function parseDlqArgs(argv: readonly string[], env: DlqIo['env']): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        queue: { type: 'string', multiple: true },
        limit: { type: 'string' },
        offset: { type: 'string' },
        all: { type: 'boolean' },
        json: { type: 'boolean' },
        url: { type: 'string' },
        vhost: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError(errorMessage(e));
  }
  const { values, positionals } = parsed;
  const [name, id, ...extra] = positionals;
  const command: Command = {
    name: values.help || name === undefined || name === 'help' ? 'help' : (name as Command['name']),
    id,
    all: values.all === true,
    queues: values.queue ?? [],
    limit: count(values.limit, '--limit', 20),
    offset: count(values.offset, '--offset', 0),
    json: values.json === true,
    url: urlOf(values.url ?? env['AMQP_URL'] ?? DEFAULT_AMQP_URL, values.vhost),
  };
  if (command.name === 'help') return command;
  if (!['list', 'show', 'replay'].includes(command.name)) throw new UsageError(`unknown command "${name}"`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (command.name === 'list' && id !== undefined) throw new UsageError('list takes no message id (use show ID)');
  if (command.name === 'show' && id === undefined) throw new UsageError('show needs a message id');
  if (command.name === 'replay' && (id === undefined) === !command.all)
    throw new UsageError('replay needs a message id, or --all');
  if (command.all && command.name !== 'replay') throw new UsageError('--all goes with replay');
  return command;
}

/** Runs one command; resolves with the exit status. Never throws. */
export async function runDlqCli(argv: readonly string[], io: DlqIo = processIo): Promise<number> {
  let command: Command;
  try {
    command = parseDlqArgs(argv, io.env);
  } catch (e) {
    io.stderr(`dlq: ${errorMessage(e)}\n\n${USAGE}`);
    return DlqExit.Usage;
  }
  if (command.name === 'help') {
    io.stdout(USAGE);
    return DlqExit.Ok;
  }
  let admin: DeadLetterAdmin | undefined;
  try {
    admin = await DeadLetterAdmin.connect({ url: command.url });
    // A look (list, show) and `replay ID` take every message of the DLQ and give back all but the replayed one;
    // only `replay --all` gives back nothing (unless it stops).
    if (admin.looksCount && !command.all) {
      io.stderr(
        `dlq: warning: RabbitMQ ${admin.serverVersion} counts each look against a quorum queue's delivery limit (default 20 since 4.0); set a policy delivery-limit: -1 on the DLQs (docs/runbooks/dead-letters.md)\n`,
      );
    }
    await execute(admin, command, io);
    return DlqExit.Ok;
  } catch (e) {
    io.stderr(`dlq: ${redactUrl(errorMessage(e))}\n`);
    // Not found, replay stopped (DeadLetterNotFoundError, ReplayFailedError, QueueNotFoundError) or connection lost.
    return e instanceof BusUnavailableError ? DlqExit.BrokerUnavailable : DlqExit.Failed;
  } finally {
    await admin?.close();
  }
}

async function execute(admin: DeadLetterAdmin, command: Command, io: DlqIo): Promise<void> {
  const json = (value: unknown): void => io.stdout(`${JSON.stringify(value, null, 2)}\n`);
  const queues = command.queues;
  switch (command.name) {
    case 'list': {
      const listing = await admin.list({ queues, limit: command.limit, offset: command.offset });
      if (command.json) json({ queues: listing });
      else io.stdout(formatListing(listing, command.offset));
      return;
    }
    case 'show': {
      const found = await admin.show(command.id as string, { queues });
      if (command.json) json({ messages: found });
      else io.stdout(found.map(formatDetail).join('\n'));
      return;
    }
    case 'replay': {
      const results = command.all
        ? await admin.replayAll({
            queues,
            onProgress: (p) =>
              io.stderr(`dlq: ${p.deadLetterQueue} → ${p.sourceQueue}: ${p.replayed}/${p.total} replayed\n`),
          })
        : await admin.replay(command.id as string, { queues });
      if (command.json) json({ replayed: results });
      else io.stdout(formatReplay(results));
      return;
    }
    default:
      throw new UsageError(`unknown command "${String(command.name)}"`);
  }
}

const cell = (v: string | number | null | undefined, width: number): string => {
  const s = v === null || v === undefined ? '-' : String(v);
  return s.length > width ? `${s.slice(0, width - 1)}…` : s.padEnd(width);
};

function formatRow(m: DeadLetterSummary): string {
  const line = `  ${cell(m.messageId, 36)}  ${cell(m.type, 20)}  ${cell(m.cause, 14)}  ${cell(m.deadLetteredAt, 24)}  ${cell(m.deliveryCount, 5)}  ${m.reason ?? '-'}\n`;
  const extra = [
    m.apiKeyId && `api key ${m.apiKeyId}`,
    m.updateId && `update ${m.updateId}`,
    m.replays > 0 && `replayed ${m.replays}× before`,
  ].filter(Boolean);
  return extra.length > 0 ? `${line}  ${' '.repeat(36)}  ${extra.join(', ')}\n` : line;
}

export function formatListing(listing: readonly DeadLetterQueueListing[], offset = 0): string {
  let out = '';
  for (const q of listing) {
    if (!q.declared) {
      out += `${q.deadLetterQueue}: not declared on this vhost\n`;
      continue;
    }
    out += `${q.deadLetterQueue}: ${q.messageCount} message(s), from ${q.sourceQueue}\n`;
    if (q.messages.length === 0) continue;
    out += `  ${cell('MESSAGE ID', 36)}  ${cell('TYPE', 20)}  ${cell('CAUSE', 14)}  ${cell('DEAD-LETTERED AT', 24)}  ${cell('DELIV', 5)}  REASON\n`;
    for (const m of q.messages) out += formatRow(m);
    const rest = q.messageCount - offset - q.messages.length;
    if (rest > 0) out += `  … ${rest} more (--limit, --offset)\n`;
  }
  return out;
}

export function formatDetail(d: DeadLetterDetail): string {
  const s = d.summary;
  const rows: Array<[string, unknown]> = [
    ['message id', s.messageId],
    ['dead-letter queue', s.deadLetterQueue],
    ['source queue', s.sourceQueue],
    ['type', s.type],
    ['cause', s.cause],
    ['reason', s.reason],
    ['dead-lettered at', s.deadLetteredAt],
    ['deliveries', s.deliveryCount],
    ['api key id', s.apiKeyId],
    ['update id', s.updateId],
    ['earlier replays', s.replays],
    ['size', `${s.bytes} bytes`],
  ];
  let out = rows.map(([k, v]) => `${k.padEnd(18)} ${v === null || v === undefined ? '-' : String(v)}\n`).join('');
  out += `properties\n${indent(JSON.stringify(d.properties, null, 2))}\n`;
  out += `headers\n${indent(JSON.stringify(d.headers, null, 2))}\n`;
  out +=
    'json' in d.body
      ? `body\n${indent(JSON.stringify(d.body.json, null, 2))}\n`
      : `body (not JSON, base64)\n  ${d.body.base64}\n`;
  return out;
}

const indent = (text: string): string =>
  text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');

export function formatReplay(results: readonly ReplayResult[]): string {
  const total = results.reduce((n, r) => n + r.replayed, 0);
  let out = `replayed ${total} message(s)\n`;
  for (const r of results) out += `  ${r.deadLetterQueue} → ${r.sourceQueue}: ${r.replayed}\n`;
  return out;
}

if (require.main === module) {
  void runDlqCli(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
