import { applyDecorators } from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiHeader,
  ApiNotFoundResponse,
  ApiResponse,
  ApiServiceUnavailableResponse,
  type SchemaObject,
} from '@nestjs/swagger';
import { checkInputSchema } from '@fleetwatch/contracts';
import { z } from 'zod';
import { errorBodySchema, jsonSchemaOf } from '../web/openapi';

// OpenAPI shapes of the configuration routes (the contracts declare the answers as
// TypeScript interfaces; the check itself comes from its zod schema).

const str: SchemaObject = { type: 'string' };
const int: SchemaObject = { type: 'integer' };
const dateTime: SchemaObject = { type: 'string', format: 'date-time' };

function outputSchemaOf(schema: z.ZodType): SchemaObject {
  const json = z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }) as Record<string, unknown>;
  delete json.$schema;
  return json as SchemaObject;
}

const redactedSecret: SchemaObject = {
  type: 'object',
  required: ['set'],
  properties: { set: { type: 'boolean' } },
  description: 'a credential header stored (write-only): its value is never returned',
};

/**
 * An http check's `headers` as a write sends them (`input`: a value, `{set}` to keep the stored one, `null` to
 * remove it) or an answer shows them (`output`: credential headers as `{set: true}`): contracts' check-secrets.ts.
 */
function withCredentialHeaders(schema: SchemaObject, side: 'input' | 'output'): SchemaObject {
  const http = (schema.oneOf ?? schema.anyOf ?? []).find(
    (o) => ((o as SchemaObject).properties?.['type'] as { const?: unknown } | undefined)?.const === 'http',
  ) as SchemaObject | undefined;
  const headers = http?.properties?.['headers'] as SchemaObject | undefined;
  if (!headers || typeof headers.additionalProperties !== 'object') return schema;
  const value = headers.additionalProperties as SchemaObject;
  headers.additionalProperties = {
    anyOf: side === 'input' ? [value, redactedSecret, { type: 'null' } as SchemaObject] : [value, redactedSecret],
  };
  headers.description =
    side === 'input'
      ? 'Request headers. Credential headers (Authorization, Proxy-Authorization, Cookie, X-Api-Key, names with ' +
        'token, secret, password or api-key in them) are write-only: a value stores it, `{"set": true}` or leaving it ' +
        'out keeps the stored one, `null` removes it; a new URL origin needs each sent again (or null) — else a 400 ' +
        'naming `headers.<name>`.'
      : 'Request headers; credential headers (write-only) show as `{"set": true}`, never their value.';
  return schema;
}

/** What a client sends for one check (POST, PUT, an item of bulk, YAML). */
export const checkInputJsonSchema: SchemaObject = withCredentialHeaders(jsonSchemaOf(checkInputSchema), 'input');

export const checkSchema: SchemaObject = {
  allOf: [
    withCredentialHeaders(outputSchemaOf(checkInputSchema), 'output'),
    {
      type: 'object',
      required: ['id', 'targetId', 'version', 'createdAt', 'updatedAt'],
      properties: {
        id: { type: 'string', format: 'uuid' },
        targetId: { type: 'string', example: 'check:0190f0e0-0000-7000-8000-000000000000' },
        version: { type: 'integer', description: 'Config version that last changed it: its ETag for If-Match' },
        createdAt: dateTime,
        updatedAt: dateTime,
      },
    },
  ],
};

const pingTokens = {
  pingTokens: {
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'push checks this write created: their ping token by check id — in this answer only',
  },
  pingUrls: {
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'the same as ping URLs on status-ingest (`…/ping/{token}`, `/start`, `/fail`)',
  },
} satisfies Record<string, SchemaObject>;

/** A created check; a `push` check with its ping token, shown once. */
export const createdCheckSchema: SchemaObject = {
  allOf: [
    checkSchema,
    {
      type: 'object',
      properties: {
        pingToken: { type: 'string', description: '`push` checks: the ping token, in this answer only' },
        pingUrl: { type: 'string', description: '`push` checks: where to ping (status-ingest `/ping/{token}`)' },
      },
    },
  ],
};

export const checkPageSchema: SchemaObject = {
  type: 'object',
  required: ['items', 'nextCursor'],
  properties: {
    items: { type: 'array', items: checkSchema },
    nextCursor: { type: 'string', nullable: true, description: 'Pass as `cursor` for the next page; null on the last' },
  },
};

export const bulkCreatedSchema: SchemaObject = {
  type: 'object',
  required: ['checks', 'version'],
  properties: { checks: { type: 'array', items: checkSchema }, version: int, ...pingTokens },
};

const diffEntry: SchemaObject = {
  type: 'object',
  required: ['path'],
  properties: { path: str, before: {}, after: {} },
};

export const importResultSchema: SchemaObject = {
  type: 'object',
  required: ['dryRun', 'plan', 'version'],
  properties: {
    dryRun: { type: 'boolean' },
    ...pingTokens,
    version: { type: 'integer', description: 'The config version after the import (unchanged by a dry run)' },
    plan: {
      type: 'array',
      items: {
        type: 'object',
        required: ['action', 'name', 'id'],
        properties: {
          action: { type: 'string', enum: ['create', 'change', 'delete', 'unchanged'] },
          name: str,
          id: { type: 'string', nullable: true },
          diff: { type: 'array', items: diffEntry },
        },
      },
    },
  },
};

const versionSummary = {
  version: int,
  hash: { type: 'string', description: 'sha256 of the canonical snapshot' },
  actor: str,
  createdAt: dateTime,
  summary: str,
};

export const versionListSchema: SchemaObject = {
  type: 'object',
  required: ['items'],
  properties: {
    items: {
      type: 'array',
      items: { type: 'object', required: Object.keys(versionSummary), properties: versionSummary },
    },
  },
};

export const versionSchema: SchemaObject = {
  type: 'object',
  required: [...Object.keys(versionSummary), 'snapshot'],
  properties: { ...versionSummary, snapshot: { type: 'object', additionalProperties: true } },
};

export const auditPageSchema: SchemaObject = {
  type: 'object',
  required: ['items', 'nextCursor'],
  properties: {
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'at', 'actor', 'action', 'subject', 'version', 'diff'],
        properties: {
          id: str,
          at: dateTime,
          actor: str,
          action: str,
          subject: { type: 'string', nullable: true },
          version: { type: 'integer', nullable: true },
          diff: { type: 'array', items: diffEntry },
        },
      },
    },
    nextCursor: { type: 'string', nullable: true },
  },
};

const conflictBodySchema: SchemaObject = {
  allOf: [
    errorBodySchema,
    {
      type: 'object',
      properties: { error: { type: 'object', properties: { currentVersion: int } } },
    },
  ],
};

/** Every route that asks the owner: 503 when it does not answer in time. */
export function ApiOwnerUnavailable(): MethodDecorator {
  return ApiServiceUnavailableResponse({
    description: 'sync-orchestrator did not answer within the RPC timeout (5 s); Retry-After says when to retry',
    schema: errorBodySchema,
  });
}

/** What the OpenAPI document says of the `Idempotency-Key` header. */
export const IDEMPOTENCY_KEY_DESCRIPTION =
  '1–255 visible ASCII characters, sent once: a retry with the same key, route and body (after a 503) is answered as ' +
  'the first request was, writing nothing again; the same key with another body is a 422';

/** A versioned write: If-Match, 404, 409 with the current version, 422 when the policy refuses. */
export function ApiVersionedWrite(
  options: { denied?: boolean; notFound?: boolean; idempotencyKey?: boolean } = {},
): MethodDecorator {
  const decorators = [
    ...(options.idempotencyKey
      ? [
          ApiHeader({
            name: 'Idempotency-Key',
            required: false,
            description: IDEMPOTENCY_KEY_DESCRIPTION,
          }),
        ]
      : []),
    ApiHeader({
      name: 'If-Match',
      required: false,
      description: 'The ETag last read (`"7"`): the write is refused with 409 when the version moved on',
    }),
    ApiConflictResponse({
      description: 'Stale If-Match: `error.currentVersion` (and the ETag header) give the version held now',
      schema: conflictBodySchema,
    }),
    ApiOwnerUnavailable(),
  ];
  if (options.notFound !== false) decorators.push(ApiNotFoundResponse({ schema: errorBodySchema }));
  const unprocessable = [
    ...(options.denied ? ['refused by policy (`denied`): e.g. the check reaches a network the deny list forbids'] : []),
    ...(options.idempotencyKey
      ? [
          'the Idempotency-Key was already used by this caller for another request of this kind (`denied`, issue path `Idempotency-Key`)',
        ]
      : []),
  ];
  if (unprocessable.length > 0)
    decorators.push(ApiResponse({ status: 422, description: unprocessable.join('; or '), schema: errorBodySchema }));
  return applyDecorators(...decorators);
}
