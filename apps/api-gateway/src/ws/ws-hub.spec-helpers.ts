import { UserRole, type WsServerMessage } from '@fleetwatch/contracts';
import { FrameBudget } from './frame-budget';
import { SocketSubscriptions } from './subscriptions';
import type { WsClient, WsHub } from './ws-hub.service';

// What the hub's unit specs share: a socket that records what the hub sends it, and a viewer attached with it.

/** A socket as the hub uses it, recording each frame sent (parsed); `emit` delivers a client frame. */
export function fakeSocket() {
  const handlers = new Map<string, (...args: unknown[]) => void>();
  const sent: WsServerMessage[] = [];
  const socket = {
    OPEN: 1,
    CONNECTING: 0,
    readyState: 1,
    bufferedAmount: 0,
    on: (event: string, fn: (...args: unknown[]) => void) => handlers.set(event, fn),
    send: (json: string) => sent.push(JSON.parse(json) as WsServerMessage),
    close: () => undefined,
    terminate: () => undefined,
    ping: () => undefined,
  };
  return {
    socket,
    sent,
    types: () => sent.map((m) => m.type),
    emit: (data: unknown) => handlers.get('message')?.(data, false),
  };
}

/** Opens sockets on `hub`, each a viewer of its own (u1, u2, …). */
export function socketOpener(hub: WsHub): () => ReturnType<typeof fakeSocket> {
  let n = 0;
  return () => {
    const s = fakeSocket();
    const id = `u${++n}`;
    const client: WsClient = {
      socket: s.socket as unknown as WsClient['socket'],
      principal: { kind: 'user', id, name: id, role: UserRole.Viewer, sessionId: id },
      recheck: async () => client.principal,
      credentialKey: id,
      subscriptions: new SocketSubscriptions(),
      expiry: null,
      awaitingPong: false,
      frames: new FrameBudget(),
    };
    hub.attach(client);
    return s;
  };
}
