import { z } from 'zod';
import { InstanceFloors, JsonStateFile, type PushLog } from '@fleetwatch/pusher';

/** What the ingest accepted for one container: the (unsalted) state ids, oldest first, and how to name it. */
export interface LedgerEntry {
  history: string[];
  name: string;
  image?: string;
  /**
   * Epoch ms the container's last update sent was dated: a restarted watcher dates the container's next update after
   * it (datedAfter). Absent in ledgers written before it was kept.
   */
  at?: number;
}

const HISTORY_MAX = 32;
const fileSchema = z.object({
  version: z.literal(1),
  containers: z.record(
    z.string().max(128),
    z.object({
      history: z.array(z.string().max(512)).max(HISTORY_MAX),
      name: z.string().max(512),
      image: z.string().max(1024).optional(),
      at: z.number().int().nonnegative().max(8.64e15).optional(),
    }),
  ),
  /**
   * When the last update of each pushed instance (a container's name) was dated, whichever container it was about
   * (InstanceFloors). Absent in ledgers written before it was kept; a watcher of the version before drops it.
   */
  instances: z.record(z.string().max(512), z.number().int().nonnegative().max(8.64e15)).optional(),
});

/**
 * The states the ingest accepted per container, kept on disk across restarts. Docker keeps no
 * time for a pause, so a container paused and unpaused while no watcher ran is back in a state
 * whose update id was stored long ago: without this ledger a restarted watcher resends that id
 * and the ingest drops it as a repeat, leaving the container PAUSED. With it, the watcher knows
 * the state is a return to an earlier one (and salts the id), knows which states it need not
 * send again (no duplicates on restart), and which containers vanished while it was away.
 * Only accepted updates are recorded: one still queued when the process died is sent again. Each container's last
 * update sent is dated here too (`at`): its first update after a restart — a state dated by when it began, by a
 * remote engine's clock behind this host's — is dated after it, or the aggregator (which keeps the newest
 * observation) took it for older than the one it holds and ignored it. So is each pushed instance's (`instances`, by
 * name): a container recreated under its name (a new id) has no entry of its own, and its first update is dated after
 * the old one's last all the same.
 */
export class SentLedger {
  private readonly entries = new Map<string, LedgerEntry>();
  private readonly state: JsonStateFile<z.infer<typeof fileSchema>>;
  /** The pushed instances' floors kept with the ledger (keepInstanceFloors); none: not kept. */
  private floors: InstanceFloors | undefined;

  constructor(file: string | undefined, log: PushLog, debounceMs = 500) {
    this.state = new JsonStateFile(
      file,
      fileSchema,
      () => {
        const instances = this.floors?.toRecord();
        return {
          version: 1 as const,
          containers: Object.fromEntries(this.entries),
          ...(instances && Object.keys(instances).length > 0 ? { instances } : {}),
        };
      },
      log,
      debounceMs,
    );
  }

  /** The floors per pushed instance the ledger keeps (filled by load, written with the ledger). */
  keepInstanceFloors(floors: InstanceFloors): void {
    this.floors = floors;
  }

  /** Reads the file; a missing file is an empty ledger, an unreadable one is logged and ignored. */
  async load(): Promise<void> {
    const data = await this.state.load();
    for (const [id, entry] of Object.entries(data?.containers ?? {})) this.entries.set(id, entry);
    this.floors?.load(data?.instances);
  }

  /**
   * An update of the pushed instance `instanceId` was sent dated `at` (epoch ms): kept as its floor. Written to the file
   * when `accepted` (the ingest took it) at most once a FLOORS_PERSIST_EVERY_MS (refreshes raise it every few seconds),
   * else with the next write (a container's acceptance, the write at stop): a watcher that sends what is never
   * delivered writes nothing.
   */
  instanceDated(instanceId: string, at: number | undefined, accepted = false): void {
    if (this.floors?.sent(instanceId, at) && accepted && this.floors.persistDue()) this.state.changed();
  }

  get all(): ReadonlyMap<string, LedgerEntry> {
    return this.entries;
  }

  /** `at`: when the container's last update sent was dated (epoch ms); absent, the one kept stays. */
  accepted(id: string, base: string, name: string, image?: string, at?: number): void {
    const entry = this.entries.get(id);
    const before = entry?.history ?? [];
    const history = [...before.filter((h) => h !== base), base].slice(-HISTORY_MAX);
    const dated = at ?? entry?.at;
    this.entries.set(id, { history, name, ...(image ? { image } : {}), ...(dated === undefined ? {} : { at: dated }) });
    this.state.changed();
  }

  /**
   * When the container's last update sent was dated (epoch ms), before the ingest accepts it: one it took as the
   * process died (its answer lost) is the floor all the same. A container with nothing accepted yet has no entry.
   */
  dated(id: string, at: number | undefined): void {
    const entry = this.entries.get(id);
    if (!entry || at === undefined || entry.at === at) return;
    this.entries.set(id, { ...entry, at });
    this.state.changed();
  }

  forget(id: string): void {
    if (this.entries.delete(id)) this.state.changed();
  }

  /** Writes now (at stop) and waits for it. */
  flush(): Promise<void> {
    return this.state.flush();
  }
}
