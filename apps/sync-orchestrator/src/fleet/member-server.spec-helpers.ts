// Shared by the leader's poll specs (fleet-poll-hardening.spec.ts, member-answers.int-spec.ts): fleet members on a
// real local HTTP server, and the answers a good member gives. Imported by tests only.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const HASH = 'a'.repeat(64);

/** A valid status report of the member `site`. */
export const memberReport = (site: string) => ({
  site,
  role: 'member',
  generatedAt: new Date().toISOString(),
  status: { UP: 1 },
  errors: null,
  broker: null,
  brokerError: null,
  hosts: null,
  flow: null,
  components: [],
});

/** A valid config snapshot of the member `site` holding `checks`. */
export const memberSnapshot = (site: string, checks: unknown[]) => ({
  schemaVersion: 1,
  site,
  generatedAt: new Date().toISOString(),
  hash: HASH,
  configVersion: 1,
  areas: {
    checks,
    alertRules: [],
    channels: [],
    properties: [],
    statusPages: [],
    usersAndRoles: [],
    componentVersions: [],
  },
});

/** Answers a request to `/<name><path>`: the member's name and the path it was asked for. */
export type MemberHandler = (name: string, path: string, req: IncomingMessage, res: ServerResponse) => void;

export interface MemberServer {
  /** `http://127.0.0.1:<port>`: the member `name` is at `${base}/${name}`. */
  base: string;
  /** Ends the answers still open and closes the server. */
  close(): Promise<void>;
}

/** Members on a real HTTP server on 127.0.0.1 (a free port), each answered by `handler`. */
export async function startMemberServer(handler: MemberHandler): Promise<MemberServer> {
  const open = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    open.add(res);
    res.on('close', () => open.delete(res));
    const [, name, path] = /^\/([^/]+)(\/[^?]*)/.exec(req.url ?? '') ?? [];
    handler(name, path, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
