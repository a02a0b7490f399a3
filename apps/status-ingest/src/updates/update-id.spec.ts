import { UUID_PATTERN } from '@fleetwatch/contracts';
import { newUpdateId, updateMessageId } from './update-id';

describe('updateMessageId', () => {
  const key = '0b5e4f7a-1111-4222-8333-944455556666';
  it('is a version-5 UUID, stable for the same key and update id', () => {
    const id = updateMessageId(key, 'deploy-42');
    expect(id).toMatch(UUID_PATTERN);
    expect(id[14]).toBe('5');
    expect(['8', '9', 'a', 'b']).toContain(id[19]);
    expect(updateMessageId(key, 'deploy-42')).toBe(id);
    // Pinned: changing the derivation would break retries across a deploy.
    expect(id).toBe('d91da21c-d70d-56d2-84b4-0a0d005bdb02');
  });
  // Pinned against the hand-written SHA-1 derivation it replaced: retries across the upgrade keep their id.
  it.each([
    ['k', 'ünïcødé 🚀', '3c6fc878-9986-5f93-9ece-3f5c826faa29'],
    ['k', '', 'dad3a9be-2814-5cf0-979a-2323f3e0c2dc'],
    ['k', 'x\ud800y', '52cae940-6e1f-5255-b4e3-bb731b5e58cf'],
  ])('keeps the derivation for (%s, %j), a lone surrogate included', (k, u, expected) =>
    expect(updateMessageId(k, u)).toBe(expected),
  );
  it.each([
    [key, 'deploy-43'],
    ['0b5e4f7a-1111-4222-8333-944455556667', 'deploy-42'],
    [`${key}\n`, 'deploy-42'.slice(1)],
  ])('differs for (%s, %s)', (k, u) => expect(updateMessageId(k, u)).not.toBe(updateMessageId(key, 'deploy-42')));
});

describe('newUpdateId', () => {
  it('is a v7 UUID carrying the time, unique and sortable by time', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => newUpdateId(1_700_000_000_000 + Math.floor(i / 100)));
    for (const id of ids.slice(0, 50)) {
      expect(id).toMatch(UUID_PATTERN);
      expect(id[14]).toBe('7');
      expect(['8', '9', 'a', 'b']).toContain(id[19]);
    }
    expect(new Set(ids).size).toBe(5000);
    expect(ids[0].replace(/-/g, '').slice(0, 12)).toBe((1_700_000_000_000).toString(16).padStart(12, '0'));
    expect(ids[4999] > ids[0]).toBe(true);
  });
});
