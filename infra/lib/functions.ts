// The HTTP functions as Lambdas (provided.al2023, arm64) behind one API Gateway HTTP API
// (payload 2.0): one route per row of the README's API table, CORS for the web origin,
// throttling. Each function gets only the network paths and secrets it uses (FUNCTIONS).
import { Duration, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { routeThrottles } from './limits.js';
import { Config, functionCodeDir } from './config.js';

/** What each function binary (functions/src/bin/<name>.rs) serves and reaches. */
export interface FunctionSpec {
  routes: string[];
  nats: boolean;
  db: boolean;
  redis: boolean;
  /**
   * Needs the JWT secret: every function binary reads it at start (outside APP_ENV=local a
   * binary without a strong JWT_SECRET refuses to start: bus::settings), so all say true.
   */
  jwt: boolean;
}

export const FUNCTIONS: Record<string, FunctionSpec> = {
  signup: { routes: ['POST /api/v1/auth/signup'], nats: true, db: true, redis: false, jwt: true },
  signin: { routes: ['POST /api/v1/auth/signin'], nats: false, db: true, redis: false, jwt: true },
  // Every authenticated request checks that its user still exists (PostgreSQL `users`).
  balance: { routes: ['GET /api/v1/balance'], nats: true, db: true, redis: false, jwt: true },
  // The OpenAPI document (for the API reference site) is served by every router; the public,
  // cheap assets function answers it.
  assets: { routes: ['GET /api/v1/assets', 'GET /api/v1/openapi.json'], nats: true, db: false, redis: true, jwt: true },
  trade: {
    routes: [
      'POST /api/v1/trade/open',
      'POST /api/v1/trade/close',
      'POST /api/v1/trade/modify',
      'GET /api/v1/trade/open',
      'GET /api/v1/trade/closed',
      'POST /api/v1/trade/orders',
      'POST /api/v1/trade/orders/cancel',
      'POST /api/v1/trade/orders/modify',
      'GET /api/v1/trade/orders',
      'GET /api/v1/trade/orders/history',
    ],
    nats: true,
    db: true,
    redis: false,
    jwt: true,
  },
  candles: { routes: ['GET /api/v1/candles'], nats: false, db: true, redis: false, jwt: true },
  // Statistics and the P&L series are read from PostgreSQL's history (and its daily rollup).
  analytics: {
    routes: ['GET /api/v1/account/stats', 'GET /api/v1/account/pnl'],
    nats: false,
    db: true,
    redis: false,
    jwt: true,
  },
  // Price alerts live in PostgreSQL; NATS tells the alerts worker (an ECS service) of changes.
  alerts_api: {
    routes: ['POST /api/v1/alerts', 'GET /api/v1/alerts', 'POST /api/v1/alerts/cancel'],
    nats: true,
    db: true,
    redis: false,
    jwt: true,
  },
};

/**
 * The AWS Parameters and Secrets Lambda Extension (arm64), by region: the functions read
 * their secrets through it on localhost:2773 (functions/src/secrets.rs). Account 345057560386
 * publishes it in most commercial regions; check the version for your region before deploying.
 */
const secretsExtensionArn = (region: string) =>
  `arn:aws:lambda:${region}:345057560386:layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:17`;

export interface FunctionsProps {
  config: Config;
  infraDir: string;
  vpc: ec2.IVpc;
  natsUrl: string;
  databaseUrl: string;
  redisUrl: string;
  jwtSecret: secretsmanager.ISecret;
  dbSecret: secretsmanager.ISecret;
  /** Security groups the functions are let into, by what they reach. */
  natsSg: ec2.SecurityGroup;
  dbSg: ec2.SecurityGroup;
  redisSg: ec2.SecurityGroup;
  webOrigins: string[];
}

export class Functions extends Construct {
  readonly api: apigw.HttpApi;
  readonly functions: Record<string, lambda.Function> = {};

  constructor(scope: Construct, id: string, props: FunctionsProps) {
    super(scope, id);
    const { config } = props;
    const extension = lambda.LayerVersion.fromLayerVersionArn(
      this, 'SecretsExtension', secretsExtensionArn(Stack.of(this).region),
    );
    const accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: config.logRetentionDays as logs.RetentionDays });
    this.api = new apigw.HttpApi(this, 'Api', {
      apiName: `exness-${config.stage}`,
      description: 'exness-rs HTTP functions (README API table)',
      corsPreflight: {
        allowOrigins: props.webOrigins,
        allowMethods: [apigw.CorsHttpMethod.GET, apigw.CorsHttpMethod.POST],
        allowHeaders: ['authorization', 'content-type', 'idempotency-key'],
        maxAge: Duration.hours(1),
      },
      createDefaultStage: false,
      disableExecuteApiEndpoint: false,
    });
    const stage = this.api.addStage('Stage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: config.throttleRatePerSecond, burstLimit: config.throttleBurst },
    });
    const cfnStage = stage.node.defaultChild as apigw.CfnStage;
    cfnStage.accessLogSettings = {
      destinationArn: accessLogs.logGroupArn,
      format: JSON.stringify({
        requestId: '$context.requestId', ip: '$context.identity.sourceIp', route: '$context.routeKey',
        status: '$context.status', latencyMs: '$context.responseLatency', error: '$context.integrationErrorMessage',
      }),
    };
    if (config.apiDomainName) {
      const domain = new apigw.DomainName(this, 'Domain', {
        domainName: config.apiDomainName,
        certificate: acm.Certificate.fromCertificateArn(this, 'Certificate', config.certificateArn),
      });
      new apigw.ApiMapping(this, 'Mapping', { api: this.api, domainName: domain, stage });
    }

    const routeKeys: string[] = [];
    const routes: apigw.HttpRoute[] = [];
    for (const [name, spec] of Object.entries(FUNCTIONS)) {
      const fn = this.function(name, spec, props, extension);
      this.functions[name] = fn;
      const integration = new HttpLambdaIntegration(`${name}Integration`, fn, {
        payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
      });
      for (const route of spec.routes) {
        const [method, path] = route.split(' ');
        routes.push(...this.api.addRoutes({ path, methods: [method as apigw.HttpMethod], integration }));
        routeKeys.push(`${method} ${path}`);
      }
    }
    routeThrottles(cfnStage, routeKeys, routes, config);
  }

  private function(name: string, spec: FunctionSpec, props: FunctionsProps, extension: lambda.ILayerVersion): lambda.Function {
    const { config } = props;
    const sg = new ec2.SecurityGroup(this, `${name}Sg`, {
      vpc: props.vpc, description: `exness ${name} function`, allowAllOutbound: false,
    });
    // HTTPS out: the secrets extension calls Secrets Manager.
    sg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'Secrets Manager');
    const reach = (target: ec2.SecurityGroup, port: number, what: string) => {
      sg.addEgressRule(target, ec2.Port.tcp(port), what);
      target.addIngressRule(sg, ec2.Port.tcp(port), `${name} function`);
    };
    if (spec.nats) reach(props.natsSg, 4222, 'NATS');
    if (spec.db) reach(props.dbSg, 5432, 'PostgreSQL');
    if (spec.redis) reach(props.redisSg, 6379, 'Redis');
    const environment: Record<string, string> = {
      NATS_URL: props.natsUrl,
      DATABASE_URL: props.databaseUrl,
      REDIS_URL: props.redisUrl,
      RUST_LOG: 'info',
    };
    if (spec.jwt) environment.JWT_SECRET_ARN = props.jwtSecret.secretArn;
    if (spec.db) environment.DATABASE_SECRET_ARN = props.dbSecret.secretArn;
    const logGroup = new logs.LogGroup(this, `${name}Logs`, { retention: config.logRetentionDays as logs.RetentionDays });
    const fn = new lambda.Function(this, name, {
      functionName: `exness-${config.stage}-${name}`,
      description: `exness ${name} (functions/src/bin/${name}.rs)`,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(functionCodeDir(config, props.infraDir, name)),
      memorySize: config.lambdaMemoryMb,
      timeout: Duration.seconds(10),
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [sg],
      environment,
      layers: [extension],
      logGroup,
      tracing: lambda.Tracing.ACTIVE,
    });
    if (spec.jwt) props.jwtSecret.grantRead(fn);
    if (spec.db) props.dbSecret.grantRead(fn);
    return fn;
  }
}
