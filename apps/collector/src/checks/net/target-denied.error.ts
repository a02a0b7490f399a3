import { ForbiddenError } from '@fleetwatch/domain';
import type { CertFacts } from './cert-facts';

// The one error a check gets when the target policy refuses where it would connect
// (SPEC §5). Its message is what the result shows people, so it names the address and
// the denied network, and the host as written when that differs (`2852039166`,
// `metadata.example`): the operator sees both what they typed and what it became.

export class TargetDeniedError extends ForbiddenError {
  constructor(
    /** The host as the check (or a redirect) named it. */
    readonly host: string,
    /** The address it denotes or resolved to; null when the name itself is denied. */
    readonly address: string | null,
    /** The denied network (or name rule) that matched. */
    readonly rule: string,
  ) {
    super(
      address === null
        ? `name ${host} is denied by the target policy (${rule})`
        : address === host
          ? `address ${address} is in denied network ${rule}`
          : `address ${address} of ${host} is in denied network ${rule}`,
    );
  }
}

/** The target's TLS certificate is not trusted and the check verifies TLS (the default). */
export class CertificateUntrustedError extends Error {
  constructor(
    readonly host: string,
    readonly reason: string,
    /** The certificate presented, for the result (certDaysLeft, validTo): an expired one is the usual case. */
    readonly cert?: CertFacts,
  ) {
    super(`certificate of ${host} not trusted: ${reason}`);
    this.name = 'CertificateUntrustedError';
  }
}
