import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import {
  instanceIdSchema,
  InstanceKind,
  instanceKindSchema,
  Messages,
  TargetIds,
  TargetKind,
  type InstanceRemovalAccepted,
  type StatusUpdateBatchItem,
} from '@fleetwatch/contracts';
import { InvalidError, NotFoundError } from '@fleetwatch/domain';
import { LiveStateStore } from '@fleetwatch/live-state';
import { BusPublisher } from '@fleetwatch/messaging';
import type { Principal } from '../auth/principal';
import { actorOf } from '../checks/request-envelope';
import { sendConfirmed } from '../web/bus-command';

/**
 * Removes a pushed instance that will not say so itself (its pusher is gone: a host decommissioned, a daemon
 * uninstalled), which otherwise stays STALE for ever. The removal is what a pusher sends for a deleted pod — a
 * `removed` update (SPEC §6) — one per location the instance has, in one bus message sharded like its updates, so the
 * aggregator (owner of live state) folds it in order with them: the instance leaves live state and the lists, its
 * status events go to UNKNOWN (its alerts resolve), its history stays, and an update newer than the removal brings it
 * back. The updates are stored like any pushed one, with who removed it (`source`, `message`).
 */
@Injectable()
export class InstanceRemovalService {
  constructor(
    private readonly live: LiveStateStore,
    private readonly publisher: BusPublisher,
  ) {}

  async remove(principal: Principal, instanceId: string, now = Date.now()): Promise<InstanceRemovalAccepted> {
    const valid = instanceIdSchema.safeParse(instanceId);
    if (!valid.success) {
      const message = valid.error.issues[0]?.message ?? 'not an instance id';
      throw new InvalidError(`instanceId: ${message}`, [{ path: 'instanceId', message }]);
    }
    const targetId = TargetIds.instance(instanceId);
    const target = await this.live.getTarget(targetId);
    const locations = Object.keys(target?.locations ?? {}).sort();
    // Not in live state: never pushed, or removed already (a repeated DELETE).
    if (!target || target.kind !== TargetKind.Instance || locations.length === 0)
      throw new NotFoundError(`instance ${JSON.stringify(instanceId)} not found`);
    // Not before its newest update (a pusher's clock ahead of ours): the aggregator takes a removal older than the
    // state it holds for a late one of an earlier life, and would keep the instance.
    const at = Math.max(now, ...locations.map((l) => target.locations[l].observedAt));
    const removedAt = new Date(at).toISOString();
    const actor = actorOf(principal);
    const updates: StatusUpdateBatchItem[] = locations.map((location) => {
      const id = randomUUID();
      return {
        id,
        updateId: `removed:${id}`,
        instanceId,
        // The kind it has (it changes nothing: the instance leaves live state); one stored before kinds were kept
        // has none, and one the bus schema would refuse (live state of another version) must not make it a 400:
        // any will do.
        kind: instanceKindSchema.safeParse(target.instanceKind).success
          ? (target.instanceKind as InstanceKind)
          : InstanceKind.Service,
        status: 'removed',
        source: 'api-gateway',
        location,
        occurredAt: removedAt,
        receivedAt: new Date(now).toISOString(),
        message: `by ${actor.name} (${actor.id}) through the API`,
      };
    });
    // A removal twice is one removal (the second finds nothing newer to remove): a publish not confirmed may be sent
    // again.
    const envelope = await sendConfirmed(
      this.publisher,
      { notDone: 'the instance was not removed', noun: 'removal', field: 'instanceId' },
      () => this.publisher.publish(Messages.StatusUpdateBatch, { updates }),
    );
    return { instanceId, targetId, removedAt, locations, messageId: envelope.id };
  }
}
