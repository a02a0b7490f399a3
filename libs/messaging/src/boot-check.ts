import { connect } from 'amqplib';

/**
 * The RabbitMQ check a service runs before taking work (observability's
 * BootDependency shape). Refused credentials or a missing vhost are permanent.
 */
export function amqpBootCheck(amqpUrl: string, variable = 'AMQP_URL') {
  const url = new URL(amqpUrl);
  if (url.password) url.password = '***';
  return {
    variable,
    describe: `RabbitMQ at ${url.toString()}`,
    check: async (): Promise<void> => {
      const conn = await connect(amqpUrl, { timeout: 3000 });
      conn.on('error', () => undefined);
      await conn.close().catch(() => undefined);
    },
    isPermanent: (e: unknown): boolean =>
      /ACCESS[-_]REFUSED|NOT_ALLOWED|vhost .* not found|403|530/i.test(String((e as Error).message)),
  };
}
