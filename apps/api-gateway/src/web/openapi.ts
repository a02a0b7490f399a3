import { applyDecorators } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiQuery,
  DocumentBuilder,
  SwaggerModule,
  type OpenAPIObject,
  type SchemaObject,
} from '@nestjs/swagger';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { z } from 'zod';

export const OPENAPI_PATH = 'api/docs';
export const OPENAPI_JSON_PATH = 'api/docs/openapi.json';

/** The JSON Schema of what a client sends (zod's input side), for OpenAPI. */
export function jsonSchemaOf(schema: z.ZodType): SchemaObject {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete json.$schema;
  return json as SchemaObject;
}

/** The JSON Schema of what the gateway answers (zod's output side), for OpenAPI response bodies. */
export function responseSchemaOf(schema: z.ZodType): SchemaObject {
  const json = z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }) as Record<string, unknown>;
  delete json.$schema;
  return json as SchemaObject;
}

export const errorBodySchema: SchemaObject = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', example: 'validation_failed' },
        message: { type: 'string' },
        issues: {
          type: 'array',
          items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } },
        },
      },
    },
  },
};

/** Documents a JSON body validated with a contracts schema, and its 400 answer. */
export function ApiZodBody(schema: z.ZodType, description?: string): MethodDecorator {
  return applyDecorators(
    ApiBody({ schema: jsonSchemaOf(schema), description }),
    ApiBadRequestResponse({
      description: 'Invalid body: `error.issues` names each bad field',
      schema: errorBodySchema,
    }),
  );
}

/** Documents each query parameter of a contracts query schema, and its 400 answer. */
export function ApiZodQuery(schema: z.ZodObject): MethodDecorator {
  const json = jsonSchemaOf(schema);
  const required = new Set(json.required ?? []);
  const decorators = Object.entries(json.properties ?? {}).map(([name, property]) =>
    ApiQuery({ name, required: required.has(name), schema: property as SchemaObject }),
  );
  return applyDecorators(
    ...decorators,
    ApiBadRequestResponse({
      description: 'Invalid query: `error.issues` names each bad parameter',
      schema: errorBodySchema,
    }),
  );
}

export function buildOpenApiDocument(app: NestFastifyApplication, version: string): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Fleetwatch API')
    .setDescription(
      'REST API of the Fleetwatch gateway. Authenticate with `Authorization: Bearer <token>`: a session token from ' +
        '`POST /api/v1/auth/login`, or an API key acting with the role of its scopes (read → viewer, write → operator, admin → admin). ' +
        'Errors are JSON `{ "error": { "code", "message", "issues"? } }`.',
    )
    .setVersion(version)
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'session token (fws_…) or API key (fwk_…)' })
    .build();
  return SwaggerModule.createDocument(app, config);
}

/** Swagger UI at /api/docs and the document at /api/docs/openapi.json. */
export function setupOpenApi(app: NestFastifyApplication, version: string): OpenAPIObject {
  const document = buildOpenApiDocument(app, version);
  SwaggerModule.setup(OPENAPI_PATH, app, document, {
    jsonDocumentUrl: OPENAPI_JSON_PATH,
    yamlDocumentUrl: 'api/docs/openapi.yaml',
  });
  return document;
}
