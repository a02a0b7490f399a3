import { Injectable, OnModuleInit } from '@nestjs/common';
import { readinessFailure, ReadinessRegistry } from '@fleetwatch/observability';
import { ChecksService } from '../checks/checks.service';

/**
 * The collector is ready once it has an assignment to run, from sync-orchestrator or
 * from its copy on disk. The bus is deliberately not a readiness condition: with the
 * broker away the collector goes on checking into its spool (SPEC §2), and nothing is
 * routed to it that a load balancer could hold back; bus state shows on /metrics.
 */
@Injectable()
export class ReadinessWiring implements OnModuleInit {
  constructor(
    private readonly readiness: ReadinessRegistry,
    private readonly checks: ChecksService,
  ) {}

  onModuleInit(): void {
    this.readiness.register({
      name: 'assignment',
      check: () => {
        const a = this.checks.current;
        if (!a)
          throw readinessFailure(
            'pending',
            'no assignment yet: sync-orchestrator has not answered and none is stored on disk',
          );
      },
    });
  }
}
