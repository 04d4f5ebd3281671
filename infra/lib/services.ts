// The long-lived parts as ECS Fargate services, all from the one image of the repository's
// Dockerfile: the engine (writer + standby: same settings, different ENGINE_ID, the NATS
// writer lease decides), persist, the candle consumer, the price feed, and the WebSocket hub
// behind an Application Load Balancer (HTTPS listener; ALBs upgrade WebSockets natively).
import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { Config } from './config.js';
import { METRICS_PORT, addMetricsSidecar, metricsLogGroup } from './metrics.js';

export interface ServicesProps {
  config: Config;
  vpc: ec2.IVpc;
  cluster: ecs.Cluster;
  natsUrl: string;
  databaseUrl: string;
  redisUrl: string;
  jwtSecret: secretsmanager.ISecret;
  dbSecret: secretsmanager.ISecret;
  /** A secret holding the MongoDB connection string (Atlas/DocumentDB), when enabled. */
  mongoUrlSecret?: secretsmanager.ISecret;
  natsSg: ec2.SecurityGroup;
  dbSg: ec2.SecurityGroup;
  redisSg: ec2.SecurityGroup;
}

interface ServiceSpec {
  command: string[];
  environment: Record<string, string>;
  secrets: Record<string, ecs.Secret>;
  reaches: { nats?: boolean; db?: boolean; redis?: boolean };
  /** A container health check command (the image has curl), if the process serves one. */
  health?: string;
  port?: number;
  /** Serves /metrics on METRICS_PORT, scraped by a CloudWatch agent sidecar (metrics.ts). */
  metrics?: boolean;
}

/** Files that are no part of the image's build context (kept out of the asset hash too). */
const CONTEXT_EXCLUDES = ['target', '**/node_modules', 'infra/cdk.out', '**/.venv', '.git', 'web/dist', 'docs'];

export class Services extends Construct {
  readonly services: Record<string, ecs.FargateService> = {};
  readonly hubTargets: elbv2.ApplicationTargetGroup;
  readonly alb: elbv2.ApplicationLoadBalancer;
  readonly migrateTask: ecs.FargateTaskDefinition;

  constructor(scope: Construct, id: string, props: ServicesProps) {
    super(scope, id);
    const { config } = props;
    const image = ecs.ContainerImage.fromAsset(config.repoRoot, {
      file: 'Dockerfile',
      target: 'runtime',
      platform: Platform.LINUX_ARM64,
      exclude: CONTEXT_EXCLUDES,
    });
    const common = { NATS_URL: props.natsUrl, DATABASE_URL: props.databaseUrl, LOG_FORMAT: 'json', RUST_LOG: 'info' };
    const pgPassword = ecs.Secret.fromSecretsManager(props.dbSecret, 'password');
    const jwt = ecs.Secret.fromSecretsManager(props.jwtSecret);
    const engineSecrets: Record<string, ecs.Secret> = { PGPASSWORD: pgPassword };
    if (props.mongoUrlSecret) engineSecrets.MONGODB_URL = ecs.Secret.fromSecretsManager(props.mongoUrlSecret);

    const specs: Record<string, ServiceSpec> = {
      'engine-a': { command: ['engine'], environment: { ...common, ENGINE_ID: 'engine-a' }, secrets: engineSecrets, reaches: { nats: true, db: true } },
      'engine-b': { command: ['engine'], environment: { ...common, ENGINE_ID: 'engine-b' }, secrets: engineSecrets, reaches: { nats: true, db: true } },
      persist: { command: ['persist'], environment: common, secrets: { PGPASSWORD: pgPassword }, reaches: { nats: true, db: true } },
      candles: { command: ['candle_ingest'], environment: common, secrets: { PGPASSWORD: pgPassword }, reaches: { nats: true, db: true } },
      alerts: {
        command: ['alerts'],
        environment: { ...common, REDIS_URL: props.redisUrl },
        secrets: { PGPASSWORD: pgPassword },
        reaches: { nats: true, db: true, redis: true },
      },
      'price-feed': {
        command: ['price-feed'],
        environment: { NATS_URL: props.natsUrl, REDIS_URL: props.redisUrl, FEED_HEALTH_ADDR: '0.0.0.0:7071', RUST_LOG: 'info' },
        secrets: {},
        reaches: { nats: true, redis: true },
        health: 'curl -fsS http://127.0.0.1:7071/ || exit 1',
      },
      'ws-hub': {
        command: ['ws-hub'],
        environment: {
          NATS_URL: props.natsUrl, REDIS_URL: props.redisUrl, WS_ADDR: '0.0.0.0:7070', WS_HEALTH_ADDR: '0.0.0.0:7071', RUST_LOG: 'info',
          // Every connection comes from the load balancer (in the VPC): the hub's per-address
          // connect rate cannot tell its clients apart, the load balancer's WAF rule does.
          TRUSTED_PROXIES: props.vpc.vpcCidrBlock,
        },
        secrets: { JWT_SECRET: jwt },
        reaches: { nats: true, redis: true },
        port: 7070,
        health: 'curl -fsS http://127.0.0.1:7071/healthz || exit 1',
      },
    };
    const metricsGroup = metricsLogGroup(this, config);
    for (const [name, spec] of Object.entries(specs)) {
      const observed = { ...spec, environment: { ...spec.environment, METRICS_ADDR: `0.0.0.0:${METRICS_PORT}` }, metrics: true };
      this.services[name] = this.service(name, observed, image, props, metricsGroup);
    }
    this.migrateTask = this.task('migrate', { command: ['migrate'], environment: common, secrets: { PGPASSWORD: pgPassword }, reaches: { db: true } }, image, props);

    // The hub behind an internet-facing ALB: HTTPS on 443, HTTP only redirects.
    const albSg = new ec2.SecurityGroup(this, 'AlbSg', { vpc: props.vpc, description: 'exness hub load balancer', allowAllOutbound: false });
    albSg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'wss clients');
    albSg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(80), 'redirect to https');
    this.alb = new elbv2.ApplicationLoadBalancer(this, 'HubAlb', {
      vpc: props.vpc,
      internetFacing: true,
      securityGroup: albSg,
      // WebSocket connections stay open: idle timeout above the hub's quiet periods.
      idleTimeout: Duration.seconds(300),
      dropInvalidHeaderFields: true,
    });
    const listener = this.alb.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [elbv2.ListenerCertificate.fromArn(props.config.certificateArn)],
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
    });
    this.alb.addRedirect({ sourcePort: 80, targetPort: 443 });
    const hub = this.services['ws-hub'];
    this.hubTargets = listener.addTargets('Hub', {
      port: 7070,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targets: [hub],
      // Clients reconnect to any task; stickiness keeps a reconnect storm even.
      deregistrationDelay: Duration.seconds(30),
      healthCheck: {
        // The WebSocket port answers only upgrades: the hub's probe port (WS_HEALTH_ADDR).
        port: '7071',
        path: '/healthz',
        healthyHttpCodes: '200',
        interval: Duration.seconds(15),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
    });
    for (const port of [7070, 7071]) {
      hub.connections.allowFrom(albSg, ec2.Port.tcp(port), 'load balancer');
      albSg.addEgressRule(hub.connections.securityGroups[0], ec2.Port.tcp(port), 'hub tasks');
    }
  }

  private task(name: string, spec: ServiceSpec, image: ecs.ContainerImage, props: ServicesProps, metricsGroup?: logs.LogGroup): ecs.FargateTaskDefinition {
    const { config } = props;
    const task = new ecs.FargateTaskDefinition(this, `${name}Task`, {
      cpu: config.serviceCpu,
      memoryLimitMiB: config.serviceMemoryMb,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.ARM64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    task.addContainer(name, {
      image,
      command: spec.command,
      environment: spec.environment,
      secrets: spec.secrets,
      portMappings: spec.port ? [{ containerPort: spec.port }] : undefined,
      readonlyRootFilesystem: true,
      stopTimeout: Duration.seconds(30),
      logging: ecs.LogDrivers.awsLogs({
        streamPrefix: name,
        logGroup: new logs.LogGroup(this, `${name}Logs`, { retention: config.logRetentionDays as logs.RetentionDays }),
      }),
      healthCheck: spec.health
        ? { command: ['CMD-SHELL', spec.health], interval: Duration.seconds(15), timeout: Duration.seconds(5), retries: 3, startPeriod: Duration.seconds(30) }
        : undefined,
    });
    if (spec.metrics && metricsGroup) addMetricsSidecar(task, name, config, metricsGroup);
    return task;
  }

  private service(name: string, spec: ServiceSpec, image: ecs.ContainerImage, props: ServicesProps, metricsGroup: logs.LogGroup): ecs.FargateService {
    const sg = new ec2.SecurityGroup(this, `${name}Sg`, { vpc: props.vpc, description: `exness ${name}`, allowAllOutbound: false });
    // HTTPS out: ECR, Secrets Manager, CloudWatch Logs (and Binance for the price feed).
    sg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'AWS APIs, Binance');
    if (name === 'price-feed') sg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(9443), 'Binance stream');
    const reach = (target: ec2.SecurityGroup, port: number, what: string) => {
      sg.addEgressRule(target, ec2.Port.tcp(port), what);
      target.addIngressRule(sg, ec2.Port.tcp(port), name);
    };
    if (spec.reaches.nats) reach(props.natsSg, 4222, 'NATS');
    if (spec.reaches.db) reach(props.dbSg, 5432, 'PostgreSQL');
    if (spec.reaches.redis) reach(props.redisSg, 6379, 'Redis');
    const replicas = name === 'ws-hub' ? props.config.hubTasks : 1;
    return new ecs.FargateService(this, `${name}Service`, {
      cluster: props.cluster,
      serviceName: name,
      taskDefinition: this.task(name, spec, image, props, metricsGroup),
      desiredCount: replicas,
      // Singletons (one engine writer per service, one consumer) are replaced, not doubled.
      minHealthyPercent: replicas > 1 ? 50 : 0,
      maxHealthyPercent: replicas > 1 ? 200 : 100,
      securityGroups: [sg],
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      circuitBreaker: { rollback: true },
    });
  }
}
