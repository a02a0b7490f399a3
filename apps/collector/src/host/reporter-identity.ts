import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writeJsonFile } from '../fs/json-file-writer';

/** The installation id's file in the collector's spool directory (beside the stamp file). */
export const INSTALL_ID_FILE = 'install-id.json';
const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';
const ID = /^[A-Za-z0-9-]{8,64}$/;

/** Who sends this collector's host samples (`reporter` in host.metrics). */
export interface ReporterIdentity {
  installId: string;
  bootId?: string;
}

/**
 * This collector's reporter identity: a random id made once per installation and kept in its spool directory
 * (restarts keep it; two collectors never share a spool directory: it is locked), and the kernel's boot id (random at
 * every boot: VMs cloned from one image, spool directory included, still differ). A file that cannot be read is
 * replaced; one that cannot be written leaves an id for this process only (the next restart makes another — one switch,
 * which the aggregator never reads as a conflict).
 */
export async function loadReporterIdentity(
  spoolDir: string,
  logger: Pick<Logger, 'warn'>,
  bootIdFile = BOOT_ID_FILE,
): Promise<ReporterIdentity> {
  const path = join(spoolDir, INSTALL_ID_FILE);
  let installId = await readInstallId(path).catch((e: unknown) => {
    logger.warn({ file: path, error: (e as Error).message }, 'installation id not read: a new one is made');
    return undefined;
  });
  if (installId === undefined) {
    installId = randomUUID();
    await writeInstallId(path, installId).catch((e: unknown) =>
      logger.warn({ file: path, error: (e as Error).message }, 'installation id not written: kept for this process'),
    );
  }
  const bootId = await readFile(bootIdFile, 'utf8').then(
    (t) => t.trim(),
    () => undefined,
  );
  return bootId && ID.test(bootId) ? { installId, bootId } : { installId };
}

async function readInstallId(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const v = JSON.parse(text) as { installId?: unknown } | null;
  if (!v || typeof v.installId !== 'string' || !ID.test(v.installId))
    throw new Error(`${path} holds no installation id`);
  return v.installId;
}

/** Written atomically and durably (writeJsonFile, as the stamp file). */
function writeInstallId(path: string, installId: string): Promise<void> {
  return writeJsonFile(path, { installId, createdAt: new Date().toISOString() });
}
