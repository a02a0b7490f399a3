import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Actor, CheckDefinition, CheckSpec } from '@fleetwatch/contracts';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import {
  ChecksRepository,
  generatePingToken,
  hashPingToken,
  PushMonitorsRepository,
  type OrphanMonitor,
  type PushMonitorWrite,
  type SqlTransaction,
} from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { parseCheck, specOf } from './check-form';
import { checkWrite } from './config-hash';
import { checkDiff } from './config-plan';
import { ConfigWriter, type WriteOutcome } from './config-writer';

// Heartbeat monitors are checks of type `push` (issue 15): heartbeat_monitors follows its
// push checks inside the same configuration write — created with a fresh ping token
// (returned once; only its hash is kept), updated with the check, deleted with it.

type PushCheck = Extract<CheckSpec, { type: 'push' }> & { id: string };

const isPush = (c: CheckDefinition): c is CheckDefinition & PushCheck => c.type === 'push';

function monitorOf(c: CheckDefinition & PushCheck): PushMonitorWrite {
  return {
    id: c.id,
    name: c.name,
    periodSeconds: c.periodSeconds,
    graceSeconds: c.graceSeconds,
    maxRuntimeSeconds: c.maxRuntimeSeconds ?? null,
  };
}

export interface CheckChanges {
  created?: readonly CheckDefinition[];
  changed?: readonly CheckDefinition[];
  deleted?: readonly CheckDefinition[];
}

@Injectable()
export class PushMonitors {
  constructor(private readonly monitors: PushMonitorsRepository) {}

  /** Brings heartbeat_monitors in line with a write's push checks; answers the tokens issued, by check id. */
  async follow(tx: SqlTransaction, changes: CheckChanges): Promise<Record<string, string> | undefined> {
    await this.monitors.deleteMany(
      tx,
      (changes.deleted ?? []).filter(isPush).map((c) => c.id),
    );
    await this.monitors.updateMany(tx, (changes.changed ?? []).filter(isPush).map(monitorOf));
    const created = (changes.created ?? []).filter(isPush);
    if (created.length === 0) return undefined;
    const tokens: Record<string, string> = {};
    const rows = created.map((c) => {
      const token = generatePingToken();
      tokens[c.id] = token;
      return { ...monitorOf(c), tokenHash: hashPingToken(token) };
    });
    await this.monitors.insertMany(tx, rows);
    return tokens;
  }
}

/** Who adopts monitors made before they were checks, as the audit log shows it. */
export const ADOPTION_ACTOR: Actor = { id: 'system:sync-orchestrator', name: 'heartbeat monitor adoption' };

/**
 * Monitors made before issue 15 (by the gateway, straight into heartbeat_monitors) have no
 * check: this makes each a push check with the monitor's id (so its target `check:<id>`,
 * history and token stay), through the same versioned, audited write — at start and every
 * `intervalMs`, cheap when there is nothing to adopt. A name another check has gets the
 * monitor id's first 8 characters appended.
 */
@Injectable()
export class HeartbeatAdoption implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly writer: ConfigWriter,
    private readonly checks: ChecksRepository,
    private readonly monitors: PushMonitorsRepository,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Pick<Logger, 'warn' | 'info'>,
  ) {}

  onApplicationBootstrap(): void {
    this.running = this.adoptQuietly();
    this.timer = setInterval(() => {
      this.running = this.running.then(() => this.adoptQuietly());
    }, 60_000);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  private async adoptQuietly(): Promise<void> {
    try {
      const n = await this.adopt();
      if (n > 0) this.logger.info({ adopted: n }, 'heartbeat monitors adopted as push checks');
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'heartbeat monitor adoption failed; retried later');
    }
  }

  /** Adopts every orphan monitor as one version; answers how many. */
  async adopt(): Promise<number> {
    if ((await this.monitors.orphans(undefined, 1)).length === 0) return 0;
    const r = await this.writer.write(ADOPTION_ACTOR, (ctx) => this.adoptIn(ctx.tx, ctx.next));
    return r.adopted;
  }

  private async adoptIn(tx: SqlTransaction, version: number): Promise<WriteOutcome<{ adopted: number }>> {
    const orphans = await this.monitors.orphans(tx);
    // Its name, else the name with the id's first characters, else with the whole id: each asked for at once. The
    // second taken too (a check named so by hand) made the insert fail, and with it every adoption, on every run.
    const candidates = (m: OrphanMonitor): string[] => {
      const name = m.name.trim();
      return [name, `${name} (${m.id.slice(0, 8)})`, `${name} (${m.id})`];
    };
    const taken = new Set(await this.checks.namesTaken(tx, orphans.flatMap(candidates)));
    const adopted: { monitor: OrphanMonitor; spec: CheckSpec }[] = [];
    for (const m of orphans) {
      const name = candidates(m).find((n) => !taken.has(n));
      if (name === undefined) {
        this.logger.warn(
          { monitorId: m.id, name: m.name },
          'heartbeat monitor not adopted: every name for it is taken',
        );
        continue;
      }
      const parsed = parseCheck({
        name,
        type: 'push',
        periodSeconds: m.periodSeconds,
        graceSeconds: m.graceSeconds,
        ...(m.maxRuntimeSeconds === null ? {} : { maxRuntimeSeconds: m.maxRuntimeSeconds }),
      });
      if (!parsed.ok) {
        this.logger.warn({ monitorId: m.id, issues: parsed.issues }, 'heartbeat monitor cannot become a push check');
        continue;
      }
      taken.add(parsed.spec.name);
      adopted.push({ monitor: m, spec: parsed.spec });
    }
    if (adopted.length === 0) return { changed: false, result: { adopted: 0 } };
    const created = await this.checks.insertMany(
      tx,
      adopted.map((a) => checkWrite(a.monitor.id, a.spec)),
      version,
    );
    // A suffixed name: the monitor row follows its check.
    await this.monitors.updateMany(tx, created.filter(isPush).map(monitorOf));
    return {
      changed: true,
      result: { adopted: created.length },
      summary: `adopt ${created.length} heartbeat monitor${created.length === 1 ? '' : 's'} as push checks`,
      audit: created.map((c) => ({
        action: 'check.adopt',
        subject: c.id,
        diff: checkDiff(null, c),
        details: { from: 'heartbeat_monitors' },
      })),
      touched: created.map((c) => ({ id: c.id, before: null, after: specOf(c) })),
    };
  }
}
