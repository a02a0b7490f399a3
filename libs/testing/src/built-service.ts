import { spawn, type ChildProcess } from 'node:child_process';
import { repoRoot } from './admin/postgres';
import { freePortBlock } from './free-ports';

export interface BuiltServiceOptions {
  /** The service in error messages: `<name> exited (<code>):\n<output>`, `<name> not ready within N s:\n<output>`. */
  name: string;
  /** The script to run with this Node (a built service's main.js, e.g. under a copyBuiltDist copy). */
  main: string;
  /** The service's environment over process.env, given the port drawn for it (freePortBlock). */
  env(port: number): Record<string, string>;
  /** Working directory (default: the repository's root). */
  cwd?: string;
  /** How long /readyz may take to answer 2xx (default 30 s); past it the process is SIGKILLed. */
  readyTimeoutMs?: number;
  /** Between two /readyz polls (default 100 ms). */
  pollMs?: number;
  /** How many of the last characters of stdout and stderr together are kept for output() (default 6000). */
  logTail?: number;
}

export interface BuiltService {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** The last `logTail` characters it printed (for failure messages). */
  output(): string;
  /** SIGKILL: no shutdown hook runs. Resolves once it exited. */
  kill(): Promise<void>;
  /** SIGTERM (graceful), SIGKILL after 10 s. Resolves once it exited. */
  stop(): Promise<void>;
}

/**
 * Runs a built service as a child process on a free port (below the kernel's ephemeral range) and waits until its
 * /readyz answers 2xx. Rejects with its output if it exits first or is not ready in time (then it is SIGKILLed).
 */
export async function spawnBuiltService(options: BuiltServiceOptions): Promise<BuiltService> {
  const { name, main, readyTimeoutMs = 30_000, pollMs = 100, logTail = 6000 } = options;
  const port = await freePortBlock(1);
  let out = '';
  const child = spawn(process.execPath, [main], {
    cwd: options.cwd ?? repoRoot(),
    env: { ...process.env, ...options.env(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-logTail));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}):\n${out}`);
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} not ready within ${readyTimeoutMs / 1000} s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  return {
    url,
    port,
    child,
    output: () => out,
    async kill() {
      if (gone()) return;
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (gone()) return;
      child.kill('SIGTERM');
      const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(hard);
    },
  };
}
