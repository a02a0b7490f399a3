import { UUID_PATTERN } from '@fleetwatch/contracts';
import { updateMessageId } from './update-id';

describe('updateMessageId', () => {
  const key = '0b5e4f7a-1111-4222-8333-944455556666';
  it('is a version-5 UUID, stable for the same key and update id', () => {
    const id = updateMessageId(key, 'deploy-42');
    expect(id).toMatch(UUID_PATTERN);
    expect(id[14]).toBe('5');
    expect(['8', '9', 'a', 'b']).toContain(id[19]);
    expect(updateMessageId(key, 'deploy-42')).toBe(id);
    // Pinned: changing the derivation would break retries across a deploy.
    expect(id).toMatchSnapshot();
  });
  it.each([
    [key, 'deploy-43'],
    ['0b5e4f7a-1111-4222-8333-944455556667', 'deploy-42'],
    [`${key}\n`, 'deploy-42'.slice(1)],
  ])('differs for (%s, %s)', (k, u) => expect(updateMessageId(k, u)).not.toBe(updateMessageId(key, 'deploy-42')));
});
