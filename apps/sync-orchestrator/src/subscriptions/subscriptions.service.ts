import { randomUUID, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  subscriptionWriteSchema,
  textProblem,
  type Actor,
  type ConfigDiffEntry,
  type Page,
  type Subscription,
  type SubscriptionSpec,
} from '@fleetwatch/contracts';
import { ForbiddenError, InvalidError, literalIpOf, NotFoundError, type TargetPolicy } from '@fleetwatch/domain';
import {
  subscriptionSecretContext,
  SubscriptionsRepository,
  type SecretSealer,
  type SqlTransaction,
  type SubscriptionRecord,
} from '@fleetwatch/persistence';
import { VersionConflictError } from '../config/config.errors';
import { ConfigWriter, type WriteOutcome, type WriteRequest } from '../config/config-writer';
import { entryDiff } from '../alerting/alert-forms';
import { invalidOf } from '../alerting/alert-config.service';
import { originOf } from '../alerting/channel-secrets';
import { CHANNEL_SEALER } from '../alerting/alerting.tokens';
import { CHECK_TARGET_POLICY } from '../config/config.tokens';

// Status-change subscriptions (SPEC §7, issue 18) as the configuration owner keeps them: every create,
// replace and delete validated by the contract, under the config lock, as a config version with its audit
// entry and a `config.changed` (area `subscriptions`) — the path of rules and channels. Like silences they
// sit outside snapshots and the config hash. The signing secret is sealed with the channels' key (context
// `subscription:<id>:secret`), required on create, kept when a replace leaves it out, never answered,
// audited as "(set)" only.

const answer = (r: SubscriptionRecord<SubscriptionSpec>): Subscription => ({
  ...r.spec,
  id: r.id,
  secret: { set: true },
  version: r.version,
  createdAt: r.createdAt,
  updatedAt: r.updatedAt,
  pausedUntil: r.pausedUntil ?? null,
});

const encodeCursor = (id: string) => Buffer.from(JSON.stringify({ i: id }), 'utf8').toString('base64url');
function decodeCursor(cursor: string): string {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { i?: unknown };
    if (typeof v?.i === 'string' && textProblem(v.i) === null) return v.i;
  } catch {
    // fall through
  }
  throw new InvalidError('cursor is not one this service gave out', [{ path: 'cursor', message: 'unknown cursor' }]);
}

/**
 * The checks' target policy (SPEC §5, FLEETWATCH_CHECK_DENY_NETWORKS) at save time: a URL whose host is a
 * denied name (cloud metadata) or a literal address in a denied network is refused, naming `url`.
 */
function urlProblem(url: string, policy: TargetPolicy): string | null {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return 'not a URL';
  }
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const name = policy.deniedName(host);
  if (name) return `name ${name} reaches a cloud metadata service and is always denied`;
  if (!literalIpOf(host)) return null;
  const network = policy.deniedBy(host);
  return network ? `address ${host} is in denied network ${network} (FLEETWATCH_CHECK_DENY_NETWORKS)` : null;
}

function parse(input: unknown): { spec: SubscriptionSpec; secret: string | undefined } {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw invalidOf('subscription', [{ path: '(body)', message: 'expected a JSON object' }]);
  const r = subscriptionWriteSchema.safeParse(input);
  if (!r.success)
    throw invalidOf(
      'subscription',
      r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    );
  const { secret, ...spec } = r.data;
  return { spec, secret };
}

@Injectable()
export class SubscriptionsService {
  constructor(
    private readonly writer: ConfigWriter,
    private readonly repo: SubscriptionsRepository,
    @Inject(CHANNEL_SEALER) private readonly sealer: SecretSealer | null,
    @Inject(CHECK_TARGET_POLICY) private readonly policy: TargetPolicy,
  ) {}

  private parse(input: unknown): { spec: SubscriptionSpec; secret: string | undefined } {
    const parsed = parse(input);
    const problem = urlProblem(parsed.spec.url, this.policy);
    if (problem) throw invalidOf('subscription', [{ path: 'url', message: problem }]);
    return parsed;
  }

  /** Whether the stored secret opens to `plain` (false when it cannot be opened: then the given one is sealed). */
  private async isStoredSecret(tx: SqlTransaction, id: string, plain: string): Promise<boolean> {
    const sealed = this.sealer ? await this.repo.sealedSecret(id, tx) : null;
    if (!this.sealer || sealed === null) return false;
    try {
      const stored = Buffer.from(this.sealer.open(sealed, subscriptionSecretContext(id)));
      const sent = Buffer.from(plain);
      return stored.length === sent.length && timingSafeEqual(stored, sent);
    } catch {
      return false;
    }
  }

  private seal(id: string, secret: string): string {
    if (!this.sealer)
      throw new ForbiddenError(
        'subscription secrets cannot be stored: sync-orchestrator has no FLEETWATCH_ENCRYPTION_KEY (see docs/runbooks/configuration.md)',
      );
    return this.sealer.seal(secret, subscriptionSecretContext(id));
  }

  async create(
    actor: Actor,
    input: unknown,
    request?: WriteRequest,
  ): Promise<{ subscription: Subscription; version: number }> {
    const { spec, secret } = this.parse(input);
    if (secret === undefined)
      throw invalidOf('subscription', [{ path: 'secret', message: 'required (write-only: the HMAC signing key)' }]);
    const id = randomUUID();
    const sealedSecret = this.seal(id, secret);
    return this.writer.write(
      actor,
      async ({ tx, next }): Promise<WriteOutcome<{ subscription: Subscription }>> => {
        const stored = await this.repo.insert<SubscriptionSpec>(tx, { id, name: spec.name, spec, sealedSecret }, next);
        return {
          changed: true,
          result: { subscription: answer(stored) },
          summary: `create subscription ${spec.name}`,
          audit: [
            {
              action: 'subscription.create',
              subject: id,
              diff: [...entryDiff(null, spec), { path: 'secret', after: '(set)' }],
            },
          ],
          touched: [],
          areas: ['subscriptions'],
        };
      },
      { request },
    );
  }

  /** Replaces the whole subscription; an absent `secret` keeps the stored one. */
  async replace(
    actor: Actor,
    id: string,
    input: unknown,
    expectedVersion?: number,
    request?: WriteRequest,
  ): Promise<{ subscription: Subscription; version: number }> {
    const { spec, secret } = this.parse(input);
    const given = secret === undefined ? undefined : this.seal(id, secret);
    return this.writer.write(
      actor,
      async ({ tx, next }): Promise<WriteOutcome<{ subscription: Subscription }>> => {
        const current = await this.current(tx, id, expectedVersion);
        // The stored secret sent again (a client that always sends its whole subscription) is no change: no new
        // version, no audit entry saying "new value", as channels' secrets (channel-secrets.ts).
        const sealedSecret = secret !== undefined && (await this.isStoredSecret(tx, id, secret)) ? undefined : given;
        // The stored secret signs for the origin it was given for, as channels' secrets (channel-secrets.ts): a move
        // to another origin sends it again. Whoever may edit the subscription could otherwise point it at a host of
        // theirs and collect signatures made with a key they were never shown (an offline guess of a weak one).
        if (secret === undefined && originOf(current.spec.url) !== originOf(spec.url))
          throw invalidOf('subscription', [
            {
              path: 'secret',
              message: `the subscription now sends to ${originOf(spec.url)}: send the secret again with the move (the stored one stays with ${originOf(current.spec.url)})`,
            },
          ]);
        const diff: ConfigDiffEntry[] = [
          ...entryDiff(current.spec, spec),
          ...(sealedSecret ? [{ path: 'secret', before: '(set)', after: '(set, new value)' }] : []),
        ];
        if (diff.length === 0) return { changed: false, result: { subscription: answer(current) } };
        const stored = await this.repo.update<SubscriptionSpec>(tx, { id, name: spec.name, spec, sealedSecret }, next);
        if (!stored) throw new NotFoundError(`subscription ${id} not found`);
        return {
          changed: true,
          result: { subscription: answer(stored) },
          summary: `replace subscription ${spec.name}`,
          audit: [{ action: 'subscription.replace', subject: id, diff }],
          touched: [],
          areas: ['subscriptions'],
        };
      },
      { request },
    );
  }

  async delete(
    actor: Actor,
    id: string,
    expectedVersion?: number,
    request?: WriteRequest,
  ): Promise<{ version: number }> {
    return this.writer.write(
      actor,
      async ({ tx }): Promise<WriteOutcome<object>> => {
        const current = await this.current(tx, id, expectedVersion);
        await this.repo.delete(tx, id);
        return {
          changed: true,
          result: {},
          summary: `delete subscription ${current.spec.name}`,
          audit: [{ action: 'subscription.delete', subject: id, diff: entryDiff(current.spec, null) }],
          touched: [],
          areas: ['subscriptions'],
        };
      },
      { request },
    );
  }

  private async current(
    tx: Parameters<SubscriptionsRepository['find']>[1],
    id: string,
    expectedVersion: number | undefined,
  ): Promise<SubscriptionRecord<SubscriptionSpec>> {
    const current = await this.repo.find<SubscriptionSpec>(id, tx);
    if (!current) throw new NotFoundError(`subscription ${id} not found`);
    if (expectedVersion !== undefined && expectedVersion !== current.version)
      throw new VersionConflictError(
        `subscription ${id} is at version ${current.version}, not ${expectedVersion}: read it again`,
        current.version,
      );
    return current;
  }

  async get(id: string): Promise<Subscription> {
    const r = await this.repo.find<SubscriptionSpec>(id);
    if (!r) throw new NotFoundError(`subscription ${id} not found`);
    return answer(r);
  }

  async list(q: { limit: number; cursor?: string }): Promise<Page<Subscription>> {
    const rows = await this.repo.list<SubscriptionSpec>({
      afterId: q.cursor ? decodeCursor(q.cursor) : undefined,
      limit: q.limit + 1,
    });
    const items = rows.slice(0, q.limit);
    return {
      items: items.map(answer),
      nextCursor: rows.length > q.limit ? encodeCursor(items[items.length - 1].id) : null,
    };
  }
}
