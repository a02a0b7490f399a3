import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { CollectorConfig } from '../config';
import { writeJsonFile } from '../fs/json-file-writer';
import { COLLECTOR_CONFIG } from '../tokens';
import { StampClock, type StepEvent, type TimeSources } from './stamp-clock';

/** The clocks the collector's stamps read (tests pass their own). */
export const STAMP_TIME = Symbol('STAMP_TIME');

/** How often the last stamp is written to the stamp file (and at shutdown). */
export const STAMP_SAVE_MS = 5_000;

/** The stamp file's name in the collector's spool directory. */
export const STAMP_FILE = 'last-stamp.json';

/**
 * The last stamp of this collector, on disk, so the next process does not stamp before it: a host rebooted with its
 * clock behind (a slow RTC, before NTP steps it) would otherwise send results and samples stamped before the ones it
 * sent last, which the aggregator orders out of their targets' status until the clock passes them. Written atomically
 * and durably by writeJsonFile (temporary file, fsync, rename, directory fsync).
 */
export class StampFile {
  constructor(readonly path: string) {}

  /** The stored stamp (epoch ms); undefined when there is none; throws when the file exists but holds no stamp. */
  async load(): Promise<number | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const v = JSON.parse(text) as { stamp?: unknown } | null;
    if (!v || typeof v.stamp !== 'number' || !Number.isFinite(v.stamp))
      throw new Error(`${this.path} is not a stamp file`);
    return v.stamp;
  }

  save(stamp: number): Promise<void> {
    return writeJsonFile(this.path, { stamp, at: new Date(stamp).toISOString() });
  }
}

/**
 * The collector's stamps (StampClock): a check result's start, a host sample's time, their envelopes' time. Never
 * before an earlier one in this process, nor (within MAX_RIDE_OUT_MS) before the last one the previous process
 * saved in the spool directory — up to STAMP_SAVE_MS before its last, after a crash.
 */
@Injectable()
export class StampService implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  private clock: StampClock;
  private readonly file: StampFile;
  private timer: NodeJS.Timeout | undefined;
  private saved: number | undefined;
  private saving: Promise<void> = Promise.resolve();
  private saveFailing = false;
  private mayWrite: () => Promise<boolean> = async () => true;
  private notOwnedLogged = false;

  constructor(
    @Inject(COLLECTOR_CONFIG) config: CollectorConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
    @Inject(STAMP_TIME) private readonly time: TimeSources,
  ) {
    this.file = new StampFile(join(config.spool.dir, STAMP_FILE));
    this.clock = new StampClock({ time, onStep: (e) => this.stepped(e) });
  }

  /** The next stamp (epoch ms). */
  now(): number {
    return this.clock.now();
  }

  /**
   * Saves only while `owns` says the spool directory is still this process's (ChecksService passes its Spool's
   * ownsDir): a collector whose spool lock was taken over must not overwrite the new holder's stamp file — at
   * shutdown, nor meanwhile.
   */
  writeOnlyWhile(owns: () => Promise<boolean>): void {
    this.mayWrite = owns;
  }

  async onModuleInit(): Promise<void> {
    let floor: number | undefined;
    try {
      floor = await this.file.load();
    } catch (e) {
      this.logger.warn({ file: this.file.path, error: (e as Error).message }, 'stamp file not read: stamps start now');
    }
    this.clock = new StampClock({ time: this.time, floor, onStep: (e) => this.stepped(e) });
    // A floor not taken (far ahead) is overwritten by the first stamp saved.
    this.saved = this.clock.floor;
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.save(), STAMP_SAVE_MS);
    this.timer.unref();
  }

  /** After every module's destroy: the last results of the checks and host sampling are stamped by then. */
  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.save();
  }

  /**
   * Writes the last stamp when it moved since the last write (one write at a time) — back too: after a step back of
   * more than MAX_RIDE_OUT_MS, followed, the file must not keep the stamp from before it, which a restart within the
   * hour before the wall clock reaches it again would take as its floor (stamps up to an hour ahead for two hours).
   */
  save(): Promise<void> {
    this.saving = this.saving.then(async () => {
      const last = this.clock.last;
      if (last === undefined || last === this.saved) return;
      try {
        if (!(await this.mayWrite())) {
          if (!this.notOwnedLogged)
            this.logger.warn(
              { file: this.file.path },
              'stamp file not written: the spool directory is locked by another process now',
            );
          this.notOwnedLogged = true;
          return;
        }
        await this.file.save(last);
        this.saved = last;
        this.saveFailing = false;
      } catch (e) {
        if (!this.saveFailing)
          this.logger.warn({ file: this.file.path, error: (e as Error).message }, 'stamp file not written');
        this.saveFailing = true;
      }
    });
    return this.saving;
  }

  private stepped(e: StepEvent): void {
    if (e.kind === 'riding')
      this.logger.warn(
        { behindMs: e.ms },
        'wall clock behind the last stamp (stepped back, or a slow clock after a reboot): stamps go on from it at the monotonic pace until the clock catches up',
      );
    else if (e.kind === 'caught-up') this.logger.info('wall clock caught up with the stamps: stamps follow it again');
    else
      this.logger.warn(
        { behindMs: e.ms },
        'wall clock more than an hour behind the last stamp: stamps follow it (the clock was wrong before, not now)',
      );
  }
}
