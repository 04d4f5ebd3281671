// The deploy's parameters: stage, sizes, domain and certificate, read from CDK context
// (`cdk.json` defaults, `-c key=value` on the command line). Nothing here is looked up in
// an AWS account, so the stack synthesizes offline without credentials.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Config {
  /** Name prefix of every resource, e.g. `dev`, `prod`. */
  stage: string;
  /** Regional ACM certificate for the WebSocket hub's HTTPS listener (and the API's domain). */
  certificateArn: string;
  /** Host name the hub's certificate covers (CNAME it to the load balancer); optional. */
  hubDomainName?: string;
  /** Custom API host name on the same certificate (else the execute-api URL); optional. */
  apiDomainName?: string;
  /** Extra browser origins allowed by CORS besides the web page's CloudFront origin. */
  extraWebOrigins: string[];
  natGateways: number;
  lambdaMemoryMb: number;
  throttleRatePerSecond: number;
  throttleBurst: number;
  /** Sign-in and sign-up, each route for all callers together (README "Limits"). */
  authThrottleRatePerSecond: number;
  authThrottleBurst: number;
  /** Each trading and alert command route, for all callers together. */
  commandThrottleRatePerSecond: number;
  commandThrottleBurst: number;
  /** WAF on the hub's load balancer: requests per client IP in 5 minutes (at least 10). */
  hubRequestsPer5Min: number;
  dbInstanceType: string;
  dbAllocatedStorageGb: number;
  dbMultiAz: boolean;
  backupRetentionDays: number;
  redisNodeType: string;
  natsCpu: number;
  natsMemoryMb: number;
  serviceCpu: number;
  serviceMemoryMb: number;
  hubTasks: number;
  logRetentionDays: number;
  /** MongoDB (DocumentDB) for engine snapshots; off by default (PostgreSQL holds them). */
  mongo: boolean;
  /** Where `cargo lambda build --release --arm64` put the functions (`<dir>/<bin>/bootstrap`). */
  functionsDir: string;
  /** Fail the synth when a function is not built (deploys), instead of using the placeholder. */
  requireBuiltFunctions: boolean;
  /** The repository root (Docker build context, web/dist, functions/openapi.json). */
  repoRoot: string;
  /** E-mail for alarm notifications; optional. */
  alarmEmail?: string;
}

type Context = (key: string) => unknown;

const text = (ctx: Context, key: string, fallback: string): string => {
  const v = ctx(key);
  return v === undefined || v === null || v === '' ? fallback : String(v);
};
const num = (ctx: Context, key: string, fallback: number): number => {
  const v = Number(text(ctx, key, String(fallback)));
  if (!Number.isFinite(v) || v < 0) throw new Error(`context ${key}: not a number: ${String(ctx(key))}`);
  return v;
};
const flag = (ctx: Context, key: string, fallback: boolean): boolean =>
  ['true', '1', 'yes'].includes(text(ctx, key, String(fallback)).toLowerCase());
const optional = (ctx: Context, key: string): string | undefined => {
  const v = text(ctx, key, '');
  return v === '' ? undefined : v;
};

/** Reads the configuration; `ctx` is `app.node.tryGetContext`. */
export function readConfig(ctx: Context, infraDir: string): Config {
  const stage = text(ctx, 'stage', 'dev');
  if (!/^[a-z][a-z0-9-]{0,15}$/.test(stage)) throw new Error(`context stage: ${stage} is not a short lower-case name`);
  const certificateArn = text(ctx, 'certificateArn', '');
  if (!certificateArn.startsWith('arn:aws')) {
    throw new Error('context certificateArn: the ACM certificate (same region) for the hub\'s HTTPS listener, e.g. -c certificateArn=arn:aws:acm:...');
  }
  const repoRoot = path.resolve(infraDir, text(ctx, 'repoRoot', '..'));
  return {
    stage,
    certificateArn,
    hubDomainName: optional(ctx, 'hubDomainName'),
    apiDomainName: optional(ctx, 'apiDomainName'),
    extraWebOrigins: text(ctx, 'extraWebOrigins', '').split(',').map((s) => s.trim()).filter(Boolean),
    natGateways: num(ctx, 'natGateways', 1),
    lambdaMemoryMb: num(ctx, 'lambdaMemoryMb', 512),
    throttleRatePerSecond: num(ctx, 'throttleRatePerSecond', 500),
    throttleBurst: num(ctx, 'throttleBurst', 1000),
    authThrottleRatePerSecond: num(ctx, 'authThrottleRatePerSecond', 20),
    authThrottleBurst: num(ctx, 'authThrottleBurst', 40),
    commandThrottleRatePerSecond: num(ctx, 'commandThrottleRatePerSecond', 200),
    commandThrottleBurst: num(ctx, 'commandThrottleBurst', 400),
    hubRequestsPer5Min: num(ctx, 'hubRequestsPer5Min', 300),
    dbInstanceType: text(ctx, 'dbInstanceType', 't4g.medium'),
    dbAllocatedStorageGb: num(ctx, 'dbAllocatedStorageGb', 50),
    dbMultiAz: flag(ctx, 'dbMultiAz', stage === 'prod'),
    backupRetentionDays: num(ctx, 'backupRetentionDays', 7),
    redisNodeType: text(ctx, 'redisNodeType', 'cache.t4g.small'),
    natsCpu: num(ctx, 'natsCpu', 512),
    natsMemoryMb: num(ctx, 'natsMemoryMb', 1024),
    serviceCpu: num(ctx, 'serviceCpu', 512),
    serviceMemoryMb: num(ctx, 'serviceMemoryMb', 1024),
    hubTasks: num(ctx, 'hubTasks', 2),
    logRetentionDays: num(ctx, 'logRetentionDays', 30),
    mongo: flag(ctx, 'mongo', false),
    functionsDir: path.resolve(infraDir, text(ctx, 'functionsDir', '../target/lambda')),
    requireBuiltFunctions: flag(ctx, 'requireBuiltFunctions', false),
    repoRoot,
    alarmEmail: optional(ctx, 'alarmEmail'),
  };
}

/**
 * The code of one function: `<functionsDir>/<bin>/` when `cargo lambda build` made it, else the
 * placeholder (a `bootstrap` that fails every start with a message), so synth and tests work
 * without a Rust cross build. Deploys set `requireBuiltFunctions`, which refuses the placeholder.
 */
export function functionCodeDir(config: Config, infraDir: string, bin: string): string {
  const built = path.join(config.functionsDir, bin);
  if (fs.existsSync(path.join(built, 'bootstrap'))) return built;
  if (config.requireBuiltFunctions) {
    throw new Error(`${built}/bootstrap is missing: run cargo lambda build --release --arm64 -p functions first`);
  }
  return path.join(infraDir, 'assets', 'placeholder-function');
}
