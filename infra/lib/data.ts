// The data services, as the servers they are: NATS as a 3-node JetStream cluster (ECS
// Fargate, one service per node, JetStream files on EFS), RDS PostgreSQL (backups kept
// `backupRetentionDays`) and ElastiCache Redis. MongoDB is optional (a connection-string secret).
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { Config } from './config.js';

export const NATS_NODES = ['nats-0', 'nats-1', 'nats-2'];
/** The NATS server image (JetStream as the code expects it; alpine has wget for the probe). */
export const NATS_IMAGE = 'nats:2.10-alpine';
/** The NATS command-line tools, for raising the streams' replicas. */
export const NATS_BOX_IMAGE = 'natsio/nats-box:0.14.5';

export interface DataProps {
  config: Config;
  vpc: ec2.IVpc;
  cluster: ecs.Cluster;
  natsSg: ec2.SecurityGroup;
  dbSg: ec2.SecurityGroup;
  redisSg: ec2.SecurityGroup;
}

export class Data extends Construct {
  readonly db: rds.DatabaseInstance;
  readonly dbSecret: secretsmanager.ISecret;
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly natsUrl: string;
  readonly natsServices: Record<string, ecs.FargateService> = {};

  constructor(scope: Construct, id: string, props: DataProps) {
    super(scope, id);
    const { config, vpc } = props;
    const privateSubnets = { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };

    // PostgreSQL. TimescaleDB is not offered on RDS: the candles migration skips its
    // hypertable block and candles work on plain tables (see infra/README.md).
    const params = new rds.ParameterGroup(this, 'DbParams', {
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17_6 }),
      // The services' sqlx is built without TLS; traffic stays inside the VPC's private subnets.
      parameters: { 'rds.force_ssl': '0' },
    });
    this.db = new rds.DatabaseInstance(this, 'Db', {
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17_6 }),
      instanceType: new ec2.InstanceType(config.dbInstanceType),
      vpc,
      vpcSubnets: privateSubnets,
      securityGroups: [props.dbSg],
      credentials: rds.Credentials.fromGeneratedSecret('exness', { secretName: `exness/${config.stage}/db` }),
      databaseName: 'exness',
      parameterGroup: params,
      allocatedStorage: config.dbAllocatedStorageGb,
      maxAllocatedStorage: config.dbAllocatedStorageGb * 4,
      storageEncrypted: true,
      multiAz: config.dbMultiAz,
      backupRetention: Duration.days(config.backupRetentionDays),
      deleteAutomatedBackups: false,
      deletionProtection: config.stage === 'prod',
      removalPolicy: config.stage === 'prod' ? RemovalPolicy.SNAPSHOT : RemovalPolicy.DESTROY,
      cloudwatchLogsExports: ['postgresql'],
      cloudwatchLogsRetention: config.logRetentionDays as logs.RetentionDays,
      enablePerformanceInsights: true,
      autoMinorVersionUpgrade: true,
    });
    this.dbSecret = this.db.secret!;
    // No password here: the functions add it from DATABASE_SECRET_ARN, containers get PGPASSWORD.
    this.databaseUrl = `postgres://exness@${this.db.dbInstanceEndpointAddress}:${this.db.dbInstanceEndpointPort}/exness`;

    // Redis (the price stream). At-rest encryption; the redis client is built without TLS.
    const redisSubnets = new elasticache.CfnSubnetGroup(this, 'RedisSubnets', {
      description: 'exness redis',
      subnetIds: vpc.selectSubnets(privateSubnets).subnetIds,
    });
    const redis = new elasticache.CfnReplicationGroup(this, 'Redis', {
      replicationGroupDescription: `exness ${config.stage} price stream`,
      engine: 'redis',
      engineVersion: '7.1',
      cacheNodeType: config.redisNodeType,
      numCacheClusters: 2,
      automaticFailoverEnabled: true,
      multiAzEnabled: true,
      atRestEncryptionEnabled: true,
      cacheSubnetGroupName: redisSubnets.ref,
      securityGroupIds: [props.redisSg.securityGroupId],
      snapshotRetentionLimit: 1,
    });
    this.redisUrl = `redis://${redis.attrPrimaryEndPointAddress}:${redis.attrPrimaryEndPointPort}`;

    this.natsUrl = this.natsCluster(props);
  }

  /** Three NATS servers, each its own ECS service with a stable Cloud Map name and its own
   *  EFS directory, routed to each other as one JetStream cluster. */
  private natsCluster(props: DataProps): string {
    const { config, vpc, cluster, natsSg } = props;
    const fsSg = new ec2.SecurityGroup(this, 'NatsFsSg', { vpc, description: 'NATS JetStream files', allowAllOutbound: false });
    fsSg.addIngressRule(natsSg, ec2.Port.tcp(2049), 'NATS servers');
    const fileSystem = new efs.FileSystem(this, 'NatsFs', {
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroup: fsSg,
      encrypted: true,
      performanceMode: efs.PerformanceMode.GENERAL_PURPOSE,
      throughputMode: efs.ThroughputMode.ELASTIC,
      removalPolicy: config.stage === 'prod' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    natsSg.addIngressRule(natsSg, ec2.Port.tcp(6222), 'cluster routes');
    const namespace = cluster.defaultCloudMapNamespace!.namespaceName;
    const host = (node: string) => `${node}.${namespace}`;
    const routes = NATS_NODES.map((n) => `nats://${host(n)}:6222`).join(',');
    for (const node of NATS_NODES) {
      const ap = fileSystem.addAccessPoint(`${node}Ap`, {
        path: `/${node}`,
        createAcl: { ownerUid: '1000', ownerGid: '1000', permissions: '750' },
        posixUser: { uid: '1000', gid: '1000' },
      });
      const task = new ecs.FargateTaskDefinition(this, `${node}Task`, {
        cpu: config.natsCpu,
        memoryLimitMiB: config.natsMemoryMb,
        runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.ARM64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
      });
      task.addVolume({
        name: 'jetstream',
        efsVolumeConfiguration: { fileSystemId: fileSystem.fileSystemId, transitEncryption: 'ENABLED', authorizationConfig: { accessPointId: ap.accessPointId, iam: 'ENABLED' } },
      });
      fileSystem.grantReadWrite(task.taskRole);
      const container = task.addContainer('nats', {
        image: ecs.ContainerImage.fromRegistry(NATS_IMAGE),
        user: '1000:1000',
        command: [
          '--name', node, '--jetstream', '--store_dir', '/data',
          '--cluster_name', `exness-${config.stage}`, '--cluster', 'nats://0.0.0.0:6222', '--routes', routes,
          '--http_port', '8222',
        ],
        portMappings: [{ containerPort: 4222 }, { containerPort: 6222 }, { containerPort: 8222 }],
        logging: ecs.LogDrivers.awsLogs({
          streamPrefix: node,
          logGroup: new logs.LogGroup(this, `${node}Logs`, { retention: config.logRetentionDays as logs.RetentionDays }),
        }),
        healthCheck: {
          command: ['CMD-SHELL', 'wget -q -O- http://127.0.0.1:8222/healthz?js-enabled-only=true || exit 1'],
          interval: Duration.seconds(10), timeout: Duration.seconds(5), retries: 3, startPeriod: Duration.seconds(30),
        },
      });
      container.addMountPoints({ containerPath: '/data', sourceVolume: 'jetstream', readOnly: false });
      const service = new ecs.FargateService(this, `${node}Service`, {
        cluster,
        serviceName: `${node}`,
        taskDefinition: task,
        desiredCount: 1,
        // One server per node name: never two at once on the same store.
        minHealthyPercent: 0,
        maxHealthyPercent: 100,
        securityGroups: [natsSg],
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        cloudMapOptions: { name: node },
        circuitBreaker: { rollback: true },
      });
      this.natsServices[node] = service;
    }
    this.replicate(props, `nats://${host(NATS_NODES[0])}:4222`);
    // The clients take one URL (async-nats parses one address) and learn the other two
    // servers from the cluster's INFO (connect_urls), which they use on reconnect.
    return `nats://${host(NATS_NODES[0])}:4222`;
  }

  /** The platform creates its streams with one replica (what a single server needs). On
   *  this cluster a small task raises each of them to three replicas (NATS scales a stream's
   *  replicas in place) and keeps doing so every five minutes, so streams created later
   *  (a new prefix, a reset) converge too. */
  private replicate(props: DataProps, natsUrl: string): void {
    const { config, vpc, cluster, natsSg } = props;
    // DEAD_LETTERS: persist's dead-letter stream (where it exists); a missing stream is skipped.
    const streams = ['ENGINE', 'EVENTS', 'TRADES', 'KV_ENGINE_LOCK', 'DEAD_LETTERS'];
    const task = new ecs.FargateTaskDefinition(this, 'ReplicasTask', {
      cpu: 256,
      memoryLimitMiB: 512,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.ARM64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    const script = [
      'while true; do',
      `  for s in ${streams.join(' ')}; do`,
      '    nats --server "$NATS_URL" stream info "$s" >/dev/null 2>&1 && nats --server "$NATS_URL" stream edit "$s" --replicas 3 --force >/dev/null 2>&1 || true',
      '  done',
      '  sleep 300',
      'done',
    ].join('\n');
    task.addContainer('replicas', {
      image: ecs.ContainerImage.fromRegistry(NATS_BOX_IMAGE),
      command: ['sh', '-c', script],
      environment: { NATS_URL: natsUrl },
      logging: ecs.LogDrivers.awsLogs({
        streamPrefix: 'nats-replicas',
        logGroup: new logs.LogGroup(this, 'ReplicasLogs', { retention: config.logRetentionDays as logs.RetentionDays }),
      }),
    });
    const sg = new ec2.SecurityGroup(this, 'ReplicasSg', { vpc, description: 'exness nats-replicas', allowAllOutbound: false });
    sg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'image pull, logs');
    sg.addEgressRule(natsSg, ec2.Port.tcp(4222), 'NATS');
    natsSg.addIngressRule(sg, ec2.Port.tcp(4222), 'nats-replicas');
    this.natsServices['nats-replicas'] = new ecs.FargateService(this, 'ReplicasService', {
      cluster,
      serviceName: 'nats-replicas',
      taskDefinition: task,
      desiredCount: 1,
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      securityGroups: [sg],
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      circuitBreaker: { rollback: true },
    });
  }
}
