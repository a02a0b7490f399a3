import { wsClientMessageSchema } from './ws.schema';

describe('wsClientMessageSchema', () => {
  it.each([
    [{ type: 'subscribe', id: 's1', topic: 'status' }, null],
    [
      { type: 'subscribe', id: 's1', topic: 'status', filter: { kind: ['check'], status: ['DOWN'], tag: 'prod' } },
      null,
    ],
    [{ type: 'subscribe', id: 't', topic: 'target', targetId: 'instance:web-1' }, null],
    [{ type: 'subscribe', id: 'h', topic: 'host-metrics', hostIds: ['gpu-1'] }, null],
    [{ type: 'unsubscribe', id: 's1' }, null],
    [{ type: 'ping' }, null],
    [{ type: 'subscribe', id: 's1', topic: 'status', filter: { kind: ['toaster'] } }, 'filter.kind.0'],
    [{ type: 'subscribe', id: 's1', topic: 'status', filter: { bogus: 1 } }, 'filter'],
    [{ type: 'subscribe', id: 'bad id!', topic: 'status' }, 'id'],
    [{ type: 'subscribe', id: 'x', topic: 'target' }, 'targetId'],
    [{ type: 'subscribe', id: 'x', topic: 'host-metrics', hostIds: [] }, 'hostIds'],
    [{ type: 'subscribe', id: 'x', topic: 'host-metrics', hostIds: Array(101).fill('h') }, 'hostIds'],
    [{ type: 'subscribe', id: 'x', topic: 'everything' }, 'topic'],
    [{ type: 'shout' }, 'type'],
    [{ type: 'ping', extra: 1 }, ''],
  ])('%j → %s', (message, failingPath) => {
    const result = wsClientMessageSchema.safeParse(message);
    if (failingPath === null) expect(result.error).toBeUndefined();
    else expect(result.error?.issues.map((i) => i.path.join('.'))).toContain(failingPath);
  });
});
