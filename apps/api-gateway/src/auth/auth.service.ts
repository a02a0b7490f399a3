import { Inject, Injectable, Logger } from '@nestjs/common';
import { ApiKeyScope, CidrSet, LoginRequest, LoginResponse, UserRole } from '@fleetwatch/contracts';
import {
  ForbiddenError,
  NotFoundError,
  RateLimitedError,
  roleOfApiKeyScopes,
  UnauthorizedError,
} from '@fleetwatch/domain';
import {
  apiKeyPrefixOf,
  ApiKeyVerifier,
  SessionsRepository,
  UserDisabledRepository,
  UsersRepository,
  type SessionLookup,
} from '@fleetwatch/persistence';
import { ApiKeyLastUse } from '../api-keys/api-key-last-use.service';
import type { GatewayConfig } from '../config';
import { GATEWAY_CONFIG } from '../tokens';
import { AnonymousOutages } from '../web/anonymous-outage';
import { CredentialLookups } from './credential-lookups';
import { LOGIN_RATE_LIMITER, type LoginRateLimiter } from './login-rate-limiter';
import { PasswordHasher } from './password-hasher.service';
import { BasicVerdictCache, MalformedBasicError, MEMBER_READ_ROUTES, parseBasicAuthorization } from './basic-auth';
import type { BasicCredentials } from './basic-auth';
import { checkOrigin, csrfTokenMatches, isSafeMethod, requestOrigin } from './browser-session';
import { Principal } from './principal';
import { hashSessionToken, newSessionToken, sessionTokenVersion } from './session-token';

const BAD_CREDENTIALS = 'invalid username or password';
const AUTH_UNAVAILABLE = 'authentication temporarily unavailable; try again shortly';

/**
 * Sign-in and bearer authentication. A bearer is either a session token from
 * /auth/login (`fws_…`) or an API key (`fwk_…`) acting with the role of its scopes
 * (read → viewer, write → operator, admin → admin; domain `roleOfApiKeyScopes`).
 */
@Injectable()
export class AuthService {
  /** Basic credentials verified lately (see BasicVerdictCache). */
  private readonly basicVerdicts = new BasicVerdictCache();
  /**
   * Sign-in and authentication answer callers not yet known: a database or Redis outage on the way is a bare 503 to
   * them, its words logged here (they said `relation "public.users" does not exist`, a role or database name, to
   * anyone who posted a login or sent any well-formed token).
   */
  private readonly outages = new AnonymousOutages(new Logger(AuthService.name), 'sign-in or authentication');

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly users: UsersRepository,
    private readonly sessions: SessionsRepository,
    private readonly verifier: ApiKeyVerifier,
    private readonly hasher: PasswordHasher,
    @Inject(LOGIN_RATE_LIMITER) private readonly limiter: LoginRateLimiter,
    private readonly disabledUsers: UserDisabledRepository,
    private readonly lastUse: ApiKeyLastUse,
    private readonly lookups: CredentialLookups,
  ) {
    this.activeSessions = lookups.sessions(sessions);
  }

  /**
   * The session read of every request, bounded (CredentialLookups): with Postgres hanging, a request waited the query
   * timeout, and well-formed forged tokens (a query each) queued ahead of every other query of the gateway.
   */
  private readonly activeSessions: SessionLookup;

  /**
   * A password checked outside sign-in (changing one's own: `check` verifies the current one and throws when it is
   * wrong), limited as sign-in is, per address and username: with a stolen session of any role, the current password
   * could otherwise be guessed as fast as argon2 allows, and a right guess took the account. An attempt whose check
   * passed is given back.
   */
  async limitPasswordCheck<T>(clientIp: string, username: string, check: () => Promise<T>): Promise<T> {
    const limit = await this.limiter.take(clientIp, username);
    if (!limit.allowed) {
      const who = limit.limitedBy === 'address' ? 'from this address' : 'for this user';
      throw new RateLimitedError(
        `too many password attempts ${who}; retry in ${limit.retryAfterSeconds} s`,
        limit.retryAfterSeconds,
      );
    }
    const out = await check();
    await this.limiter.refund(clientIp, username);
    return out;
  }

  async login(input: LoginRequest, clientIp: string): Promise<LoginResponse> {
    return this.hidingOutages(() => this.signIn(input, clientIp), 'sign-in temporarily unavailable; try again shortly');
  }

  /** `run`, an outage on its way answered as `message` (see `outages`). */
  private async hidingOutages<T>(run: () => Promise<T>, message: string): Promise<T> {
    try {
      return await run();
    } catch (e) {
      throw this.outages.hide(e, message);
    }
  }

  private async signIn(input: LoginRequest, clientIp: string): Promise<LoginResponse> {
    // Before any argon2 work: per address and per username, both must allow it.
    const limit = await this.limiter.take(clientIp, input.username);
    if (!limit.allowed) {
      const who = limit.limitedBy === 'address' ? 'from this address' : 'for this user';
      throw new RateLimitedError(
        `too many login attempts ${who}; retry in ${limit.retryAfterSeconds} s`,
        limit.retryAfterSeconds,
      );
    }
    const user = await this.users.findByUsername(input.username);
    // Unknown users cost a verification too, so timing does not tell which usernames exist.
    const ok = user
      ? await this.hasher.verify(user.passwordHash, input.password)
      : await this.hasher.verifyNobody(input.password);
    if (!user || !ok) throw new UnauthorizedError(BAD_CREDENTIALS);
    // The password was right: the attempt is given back (the limits are against guessing, SPEC §11's login is not).
    await this.limiter.refund(clientIp, input.username);
    // Said only to someone who knows the password.
    if (await this.disabledUsers.disabledAt(user.id))
      throw new ForbiddenError('this account is disabled: ask an admin to enable it');
    const { token, tokenHash } = newSessionToken(user.tokenVersion);
    const expiresAt = new Date(Date.now() + this.config.sessionTtlMs);
    try {
      await this.sessions.create({ userId: user.id, tokenHash, expiresAt });
    } catch (err) {
      // Deleted while its password was being checked: as if it had never been there (not a 500).
      if (err instanceof NotFoundError) throw new UnauthorizedError(BAD_CREDENTIALS);
      throw err;
    }
    return {
      token,
      expiresAt: expiresAt.toISOString(),
      user: { id: user.id, username: user.username, role: user.role },
    };
  }

  async logout(principal: Principal): Promise<void> {
    if (principal.kind !== 'user' || !principal.sessionId)
      throw new ForbiddenError('only a session token can be logged out; revoke an API key instead');
    await this.sessions.revoke(principal.sessionId);
    // A session lookup begun before the revoke (shared, or its answer kept for a retry) must not answer after it.
    this.lookups.forget('session:');
  }

  /**
   * The caller of an HTTP request: its `Authorization` header when it has one (bearer
   * clients, unchanged), else the browser session cookie, whose writes need CSRF proof
   * (see browser-session.ts).
   */
  authenticateRequest(request: CredentialsOfRequest): Promise<Principal> {
    return this.hidingOutages(() => this.authenticateRequestAsIs(request), AUTH_UNAVAILABLE);
  }

  private async authenticateRequestAsIs(request: CredentialsOfRequest): Promise<Principal> {
    if (request.authorization && /^Basic(?:[ ]|$)/i.test(request.authorization)) return this.authenticateBasic(request);
    if (request.authorization || !request.sessionCookie)
      return this.authenticateAsIs(request.authorization, request.ip, request.memberRead === true);
    const principal = await this.authenticateSessionTokenAsIs(request.sessionCookie, 'cookie');
    if (!isSafeMethod(request.method)) {
      const origin = checkOrigin(request, requestOrigin(request), this.config.allowedOrigins, false);
      if (!origin.ok) throw new ForbiddenError(`cross-origin write refused: ${origin.reason}`);
      if (!csrfTokenMatches(request.sessionCookie, request.csrfToken))
        throw new ForbiddenError('missing or wrong X-CSRF-Token header: a cookie-authenticated write needs it');
    }
    return principal;
  }

  /** A session token presented outside an Authorization header (a cookie, a WebSocket protocol). */
  authenticateSessionToken(token: string, via: 'cookie' | 'bearer' = 'bearer'): Promise<Principal> {
    return this.hidingOutages(() => this.authenticateSessionTokenAsIs(token, via), AUTH_UNAVAILABLE);
  }

  private async authenticateSessionTokenAsIs(token: string, via: 'cookie' | 'bearer'): Promise<Principal> {
    if (sessionTokenVersion(token) === null) throw new UnauthorizedError('session expired or revoked: log in again');
    return { ...(await this.authenticateSession(token)), via };
  }

  /** The caller behind an `Authorization` header. Throws UnauthorizedError (401) or ForbiddenError (403). */
  authenticate(authorization: string | undefined, clientIp: string, memberRead = false): Promise<Principal> {
    return this.hidingOutages(() => this.authenticateAsIs(authorization, clientIp, memberRead), AUTH_UNAVAILABLE);
  }

  private async authenticateAsIs(
    authorization: string | undefined,
    clientIp: string,
    memberRead: boolean,
  ): Promise<Principal> {
    if (!authorization)
      throw new UnauthorizedError('missing Authorization header: send "Authorization: Bearer <token>"');
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    if (!m) throw new UnauthorizedError('Authorization header must be "Bearer <token>"');
    const bearer = m[1];
    if (sessionTokenVersion(bearer) !== null) return this.authenticateSession(bearer);
    if (apiKeyPrefixOf(bearer) !== null) return this.authenticateApiKey(bearer, clientIp, memberRead);
    throw new UnauthorizedError('bearer token is neither a session token nor an API key');
  }

  private async authenticateSession(token: string): Promise<Principal> {
    const active = await this.activeSessions.findActiveByTokenHash(hashSessionToken(token));
    if (!active || active.user.tokenVersion !== sessionTokenVersion(token)) {
      throw new UnauthorizedError('session expired or revoked: log in again');
    }
    const { user, session } = active;
    return {
      kind: 'user',
      id: user.id,
      name: user.username,
      role: user.role,
      sessionId: session.id,
      sessionExpiresAt: session.expiresAt,
      via: 'bearer',
    };
  }

  private async authenticateApiKey(key: string, clientIp: string, memberRead: boolean): Promise<Principal> {
    const found = await this.verifier.verify(key);
    // Its certificate is checked only by status-ingest's mutual TLS: the gateway has none to check.
    if (found.clientCertSubject !== null)
      throw new ForbiddenError(
        `API key ${found.prefix} is bound to a client certificate: it can be used only at the ingest port ` +
          '(status-ingest, with mutual TLS), not at the gateway',
      );
    if (found.allowedCidrs.length > 0 && !addressAllowed(clientIp, found.allowedCidrs)) {
      throw new ForbiddenError(`API key ${found.prefix} is not allowed from ${clientIp}`);
    }
    // A `fleet` key (a leader's credential) reads the member endpoints as a viewer, nothing else.
    const role =
      roleOfApiKeyScopes(found.scopes) ??
      (memberRead && found.scopes.includes(ApiKeyScope.Fleet) ? UserRole.Viewer : null);
    if (!role)
      throw new ForbiddenError(
        `API key ${found.prefix} has scopes ${found.scopes.join(', ')}: gateway routes need read, write or admin` +
          ' (fleet: the member endpoints only)',
      );
    this.lastUse.touch(found.id);
    return { kind: 'api-key', id: found.id, name: found.name, role, scopes: found.scopes, via: 'bearer' };
  }

  /**
   * HTTP Basic of a site user: only for GET of the member endpoints a leader reads
   * (MEMBER_READ_ROUTES), and never above viewer whatever the user's role. A fresh verification
   * is rate-limited like a login (per address and per username) and costs an argon2 verification
   * (unknown users too); a verified credential is remembered for a while (BasicVerdictCache),
   * checked again against the user's token version on every use.
   */
  private async authenticateBasic(request: CredentialsOfRequest): Promise<Principal> {
    if (request.memberRead !== true)
      throw new UnauthorizedError(
        `HTTP Basic is accepted only on GET ${[...MEMBER_READ_ROUTES].join(', ')} (a leader's reads); ` +
          'send "Authorization: Bearer <token>"',
      );
    let credentials: BasicCredentials | null;
    try {
      credentials = parseBasicAuthorization(request.authorization);
    } catch (err) {
      if (err instanceof MalformedBasicError) throw new UnauthorizedError(err.message);
      throw err;
    }
    if (!credentials) throw new UnauthorizedError('Authorization header must be "Basic <base64(username:password)>"');
    const user = await this.verifyBasic(credentials, request.ip);
    return {
      kind: 'user',
      id: user.id,
      name: user.username,
      // Read-only whatever the user may otherwise do.
      role: UserRole.Viewer,
      via: 'basic',
    };
  }

  private async verifyBasic(
    credentials: BasicCredentials,
    clientIp: string,
  ): Promise<{ id: string; username: string }> {
    const remembered = this.basicVerdicts.get(credentials);
    if (remembered) {
      const user = await this.users.findByUsername(credentials.username);
      if (user && user.id === remembered.userId && user.tokenVersion === remembered.tokenVersion) return user;
      this.basicVerdicts.delete(credentials);
    }
    const limit = await this.limiter.take(clientIp, credentials.username);
    if (!limit.allowed) {
      const who = limit.limitedBy === 'address' ? 'from this address' : 'for this user';
      throw new RateLimitedError(
        `too many sign-in attempts ${who}; retry in ${limit.retryAfterSeconds} s`,
        limit.retryAfterSeconds,
      );
    }
    const user = await this.users.findByUsername(credentials.username);
    const ok = user
      ? await this.hasher.verify(user.passwordHash, credentials.password)
      : await this.hasher.verifyNobody(credentials.password);
    if (!user || !ok) throw new UnauthorizedError(BAD_CREDENTIALS);
    await this.limiter.refund(clientIp, credentials.username);
    if (await this.disabledUsers.disabledAt(user.id)) throw new UnauthorizedError(BAD_CREDENTIALS);
    this.basicVerdicts.set(credentials, { userId: user.id, tokenVersion: user.tokenVersion });
    return user;
  }
}

/** What authenticating an HTTP request reads from it. */
export interface CredentialsOfRequest {
  method: string;
  ip: string;
  /** `request.host` (X-Forwarded-Host only from trusted proxies). */
  host: string | undefined;
  /** `request.protocol`: `https` on TLS or from X-Forwarded-Proto of a trusted proxy. */
  protocol: string;
  authorization: string | undefined;
  sessionCookie: string | undefined;
  csrfToken: string | undefined;
  origin: string | undefined;
  referer: string | undefined;
  /** A GET of a member endpoint a leader reads (basic-auth.ts isMemberRead): Basic and `fleet` keys are accepted. */
  memberRead?: boolean;
}

function addressAllowed(ip: string, cidrs: readonly string[]): boolean {
  return new CidrSet(cidrs).contains(ip);
}
