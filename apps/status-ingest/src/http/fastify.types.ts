import type { HttpServer } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';

// Fastify's types, reached through @nestjs/platform-fastify: `fastify` itself is
// only a transitive dependency, which the module-boundary lint rule forbids importing.
type Adapter = ReturnType<NestFastifyApplication['getHttpAdapter']>;
export type FastifyInstance = Adapter extends HttpServer<infer _Req, infer _Rep, infer I> ? I : never;
export type FastifyRequest = Adapter extends HttpServer<infer R, infer _Rep, infer _I> ? R : never;
export type FastifyReply = Adapter extends HttpServer<infer _Req, infer R, infer _I> ? R : never;
