import { Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { CONFIG_YAML_MAX_BYTES } from '@fleetwatch/contracts';

/** Media types a YAML document (config as code) may be sent as. */
export const YAML_MEDIA_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'];

/**
 * The largest YAML import (the contract's CONFIG_YAML_MAX_BYTES). Applies to these media types only: JSON bodies keep
 * the gateway's 1 MiB limit.
 */
export const YAML_BODY_LIMIT_BYTES = CONFIG_YAML_MAX_BYTES;

/**
 * Lets Fastify take YAML bodies as text (`POST /api/v1/config/import`); without it they
 * are refused with 415. Registered while the app initialises, before it listens.
 */
@Injectable()
export class YamlBodyParser implements OnModuleInit {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (!fastify || typeof fastify.addContentTypeParser !== 'function') return;
    for (const type of YAML_MEDIA_TYPES) {
      if (fastify.hasContentTypeParser(type)) continue;
      fastify.addContentTypeParser(type, { parseAs: 'string', bodyLimit: YAML_BODY_LIMIT_BYTES }, (_req, body, done) =>
        done(null, body),
      );
    }
  }
}
