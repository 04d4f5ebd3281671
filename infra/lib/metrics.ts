// The platform's own metrics in CloudWatch: every long-lived binary serves Prometheus text on
// METRICS_ADDR (bus::process); a CloudWatch agent sidecar in its task scrapes it and sends
// the metrics the alarms and an operator need as embedded metric format (EMF) log events,
// which CloudWatch turns into metrics of the namespace `Exness/<stage>`, dimension
// ServiceName. The alarms: engine lag, a stale price feed (API 5xx is on API Gateway's own
// metric, in stack.ts).
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { Config } from './config.js';

/** Where every long-lived binary serves /metrics, /healthz and /readyz inside its task. */
export const METRICS_PORT = 9464;
/** The CloudWatch agent image (public ECR), pinned. */
export const CW_AGENT_IMAGE = 'public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300051.0b992';
/** Inputs in ENGINE the writer has not applied yet, above which an operator is paged. */
export const ENGINE_LAG_THRESHOLD = 1000;

export const metricsNamespace = (stage: string) => `Exness/${stage}`;
/** A literal name (not the group's token), so the agent's JSON config stays one string. */
const metricsLogGroupName = (stage: string) => `/exness/${stage}/metrics`;

/** The metrics sent to CloudWatch; the rest stay on the Prometheus endpoint. */
export const EXPORTED_METRICS = [
  'engine_lag_inputs', 'engine_lease_held', 'engine_snapshot_age_seconds', 'engine_inputs_applied_total',
  'feed_stale', 'feed_simulated', 'feed_connected', 'feed_reconnects_total',
  'hub_connections', 'hub_clients_too_slow_total', 'hub_messages_sent_total', 'hub_events_delivered_total',
  'persist_lag', 'persist_dead_lettered_total', 'candles_lag', 'candles_dead_lettered_total',
];

/** The log group the agents write EMF events to (one per stack). */
export function metricsLogGroup(scope: Construct, config: Config): logs.LogGroup {
  return new logs.LogGroup(scope, 'MetricsLogs', {
    logGroupName: metricsLogGroupName(config.stage),
    retention: config.logRetentionDays as logs.RetentionDays,
    removalPolicy: RemovalPolicy.DESTROY,
  });
}

/** Adds the agent sidecar that scrapes `localhost:METRICS_PORT` of the task's service. */
export function addMetricsSidecar(task: ecs.FargateTaskDefinition, service: string, config: Config, group: logs.LogGroup): void {
  const prometheus = [
    'global: { scrape_interval: 1m, scrape_timeout: 10s }',
    'scrape_configs:',
    `  - job_name: ${service}`,
    `    static_configs: [{ targets: ["localhost:${METRICS_PORT}"], labels: { ServiceName: "${service}" } }]`,
  ].join('\n');
  const agent = {
    logs: {
      metrics_collected: {
        prometheus: {
          log_group_name: metricsLogGroupName(config.stage),
          prometheus_config_path: 'env:PROMETHEUS_CONFIG_CONTENT',
          emf_processor: {
            metric_namespace: metricsNamespace(config.stage),
            metric_declaration: [{
              source_labels: ['ServiceName'],
              label_matcher: `^${service}$`,
              dimensions: [['ServiceName']],
              metric_selectors: EXPORTED_METRICS.map((m) => `^${m}$`),
            }],
          },
        },
      },
      force_flush_interval: 5,
    },
  };
  task.addContainer(`${service}-metrics`, {
    image: ecs.ContainerImage.fromRegistry(CW_AGENT_IMAGE),
    essential: false,
    memoryReservationMiB: 64,
    readonlyRootFilesystem: false,
    environment: {
      PROMETHEUS_CONFIG_CONTENT: prometheus,
      CW_CONFIG_CONTENT: JSON.stringify(agent),
    },
    logging: ecs.LogDrivers.awsLogs({ streamPrefix: `${service}-metrics`, logGroup: group }),
  });
  group.grantWrite(task.taskRole);
}

/** Alarms on the platform's own metrics: each engine's lag, and a stale price feed. */
export function metricAlarms(scope: Construct, config: Config, engines: string[], notify: (a: cloudwatch.Alarm) => void): void {
  const namespace = metricsNamespace(config.stage);
  const metric = (metricName: string, service: string) => new cloudwatch.Metric({
    namespace, metricName, dimensionsMap: { ServiceName: service }, statistic: 'Maximum', period: Duration.minutes(1),
  });
  for (const engine of engines) {
    // A standby engine reports no lag (it applies nothing): missing data is fine.
    notify(metric('engine_lag_inputs', engine).createAlarm(scope, `${engine}Lag`, {
      threshold: ENGINE_LAG_THRESHOLD, evaluationPeriods: 3,
      alarmDescription: `${engine} is more than ${ENGINE_LAG_THRESHOLD} inputs behind the ENGINE log`,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }));
  }
  notify(metric('feed_stale', 'price-feed').createAlarm(scope, 'FeedStale', {
    threshold: 1, evaluationPeriods: 3,
    alarmDescription: 'the price feed has had no quote from its source within the stale threshold for 3 minutes',
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    // No data at all is the NotRunning alarm's case.
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  }));
}
