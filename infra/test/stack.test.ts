// Assertions on the synthesized template (offline, no credentials): the routes are exactly
// the README's API table and each maps to an existing function binary, no secret is in plain
// text, each function may reach only what it needs, and the production basics are there.
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readConfig } from '../lib/config.js';
import { FUNCTIONS } from '../lib/functions.js';
import { AUTH_ROUTES, isCommandRoute } from '../lib/limits.js';
import { CW_AGENT_IMAGE, ENGINE_LAG_THRESHOLD, EXPORTED_METRICS, METRICS_PORT } from '../lib/metrics.js';
import { PlatformStack } from '../lib/stack.js';

const infraDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = path.resolve(infraDir, '..');
const CERT = 'arn:aws:acm:eu-west-1:111111111111:certificate/00000000-0000-0000-0000-000000000000';

function synth(context: Record<string, string> = {}): Template {
  const app = new App({ context: { certificateArn: CERT, ...context } });
  const config = readConfig((k) => app.node.tryGetContext(k), infraDir);
  return Template.fromStack(new PlatformStack(app, `exness-${config.stage}`, { config, infraDir }));
}

const template = synth();
const resources = template.toJSON().Resources as Record<string, { Type: string; Properties: any }>;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

/** README API table rows: [function, "METHOD /api/v1/path"] (probes, function "—", left out). */
function readmeRoutes(): [string, string][] {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## HTTP API'), readme.indexOf('### A session with curl'));
  const rows: [string, string][] = [];
  for (const line of section.split('\n')) {
    const m = /^\| (\w+) \| `(GET|POST|PUT|PATCH|DELETE) (\/[^`?\s]*)/.exec(line);
    if (m) rows.push([m[1], `${m[2]} /api/v1${m[3]}`]);
  }
  return rows;
}

/** Function binaries: functions/src/bin/<name>.rs whose main serves a router on Lambda. */
function functionBinaries(): string[] {
  const dir = path.join(repoRoot, 'functions', 'src', 'bin');
  return fs.readdirSync(dir)
    .filter((f) => f.endsWith('.rs') && fs.readFileSync(path.join(dir, f), 'utf8').includes('lambda::serve('))
    .map((f) => f.replace(/\.rs$/, ''))
    .sort();
}

/** Route key -> the binary name of the Lambda its integration invokes. */
function templateRoutes(): Map<string, string> {
  const fnName = (logicalId: string) => String(resources[logicalId].Properties.FunctionName).replace(/^exness-dev-/, '');
  const routes = new Map<string, string>();
  for (const [, route] of ofType('AWS::ApiGatewayV2::Route')) {
    const target = route.Properties.Target['Fn::Join'][1][1].Ref as string;
    const uri = resources[target].Properties.IntegrationUri['Fn::GetAtt'][0] as string;
    routes.set(route.Properties.RouteKey, fnName(uri));
  }
  return routes;
}

const secretIds = {
  jwt: ofType('AWS::SecretsManager::Secret').find(([, r]) => r.Properties.Name === 'exness/dev/jwt')![0],
  db: ofType('AWS::SecretsManager::SecretTargetAttachment')[0][0],
};

describe('routes', () => {
  const readme = readmeRoutes();
  const routes = templateRoutes();
  const binaries = functionBinaries();

  it('the README table is read', () => {
    assert.ok(readme.length >= 10, `only ${readme.length} rows`);
  });
  it('every README route is an API route to the function the table names, and it has a binary', () => {
    for (const [fn, key] of readme) {
      assert.equal(routes.get(key), fn, `${key}`);
      assert.ok(binaries.includes(fn), `no functions/src/bin/${fn}.rs serving on Lambda`);
    }
  });
  it('every API route is in the README table (plus the OpenAPI document it names)', () => {
    const documented = new Set(readme.map(([, key]) => key));
    documented.add('GET /api/v1/openapi.json');
    assert.deepEqual([...routes.keys()].filter((k) => !documented.has(k)), []);
  });
  it('every function binary has a route and a Lambda, and nothing else is a function', () => {
    assert.deepEqual([...new Set(routes.values())].sort(), binaries);
    assert.deepEqual(Object.keys(FUNCTIONS).sort(), binaries);
  });
  it('functions are provided.al2023 arm64 Lambdas behind an HTTP API with payload 2.0', () => {
    for (const name of binaries) {
      template.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: `exness-dev-${name}`, Runtime: 'provided.al2023', Architectures: ['arm64'], Handler: 'bootstrap',
        VpcConfig: Match.objectLike({ SubnetIds: Match.anyValue() }),
      });
    }
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    for (const [, i] of ofType('AWS::ApiGatewayV2::Integration')) assert.equal(i.Properties.PayloadFormatVersion, '2.0');
  });
});

describe('secrets', () => {
  const text = JSON.stringify(template.toJSON());
  const envs = () => {
    const out: [string, string, unknown][] = [];
    for (const [id, fn] of ofType('AWS::Lambda::Function')) {
      for (const [k, v] of Object.entries(fn.Properties.Environment?.Variables ?? {})) out.push([id, k, v]);
    }
    for (const [id, td] of ofType('AWS::ECS::TaskDefinition')) {
      for (const c of td.Properties.ContainerDefinitions) for (const e of c.Environment ?? []) out.push([id, e.Name, e.Value]);
    }
    return out;
  };
  it('no environment value is a secret: secrets are only ARNs or ECS secrets', () => {
    for (const [id, key, value] of envs()) {
      if (/(SECRET|PASSWORD|TOKEN|PRIVATE_KEY)(_ARN)?$/.test(key)) {
        assert.match(key, /_ARN$/, `${id}: ${key} carries a secret value`);
        assert.notEqual(typeof value, 'string', `${id}: ${key} is a literal`);
      }
      if (/_URL$/.test(key)) assert.doesNotMatch(JSON.stringify(value), /\/\/[^/@:"]+:[^@"]+@/, `${id}: ${key} has a password`);
    }
  });
  it('containers get secrets from Secrets Manager (ECS secrets), never inline', () => {
    const secrets = ofType('AWS::ECS::TaskDefinition').flatMap(([, td]) => td.Properties.ContainerDefinitions.flatMap((c: any) => c.Secrets ?? []));
    assert.ok(secrets.some((s: any) => s.Name === 'JWT_SECRET'));
    assert.ok(secrets.some((s: any) => s.Name === 'PGPASSWORD'));
    for (const s of secrets) assert.notEqual(typeof s.ValueFrom, 'string', `${s.Name} is a literal`);
  });
  it('secrets are generated by Secrets Manager, and the database password is a dynamic reference', () => {
    for (const [id, s] of ofType('AWS::SecretsManager::Secret')) assert.equal(s.Properties.SecretString, undefined, id);
    const db = ofType('AWS::RDS::DBInstance')[0][1];
    assert.match(JSON.stringify(db.Properties.MasterUserPassword), /resolve:secretsmanager/);
    assert.doesNotMatch(text, /dev-only-secret|change-me/);
  });
});

describe('least privilege', () => {
  const roleOf = (fnId: string) => resources[fnId].Properties.Role['Fn::GetAtt'][0] as string;
  const statementsOf = (roleId: string) =>
    ofType('AWS::IAM::Policy')
      .filter(([, p]) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
  const functionId = (name: string) => ofType('AWS::Lambda::Function').find(([, f]) => f.Properties.FunctionName === `exness-dev-${name}`)![0];

  for (const [name, spec] of Object.entries(FUNCTIONS)) {
    it(`${name} reads only its own secrets and has no wildcard beyond X-Ray`, () => {
      const statements = statementsOf(roleOf(functionId(name)));
      const secretReads = statements.filter((s: any) => [s.Action].flat().some((a: string) => a.startsWith('secretsmanager:')));
      const refs = secretReads.flatMap((s: any) => [s.Resource].flat()).map((r: any) => r.Ref).sort();
      const expected = [spec.db ? secretIds.db : null, spec.jwt ? secretIds.jwt : null].filter(Boolean).sort();
      assert.deepEqual(refs, expected);
      for (const s of statements) {
        assert.ok(![s.Action].flat().includes('*'), `${name}: Action *`);
        if ([s.Resource].flat().includes('*')) {
          for (const a of [s.Action].flat()) assert.match(a, /^xray:/, `${name}: ${a} on *`);
        }
      }
      const managed = JSON.stringify(resources[roleOf(functionId(name))].Properties.ManagedPolicyArns);
      assert.match(managed, /AWSLambdaBasicExecutionRole/);
      assert.match(managed, /AWSLambdaVPCAccessExecutionRole/);
      assert.equal((resources[roleOf(functionId(name))].Properties.ManagedPolicyArns ?? []).length, 2);
    });
    it(`${name} is let through only to the data services it uses`, () => {
      const sgId = resources[functionId(name)].Properties.VpcConfig.SecurityGroupIds[0]['Fn::GetAtt'][0];
      const ports = ofType('AWS::EC2::SecurityGroupEgress')
        .filter(([, e]) => e.Properties.GroupId['Fn::GetAtt']?.[0] === sgId)
        .map(([, e]) => e.Properties.FromPort as number).sort();
      const expected = [spec.nats ? 4222 : 0, spec.db ? 5432 : 0, spec.redis ? 6379 : 0].filter(Boolean).sort();
      assert.deepEqual(ports, expected);
      const egress = resources[sgId].Properties.SecurityGroupEgress;
      assert.deepEqual(egress.map((e: any) => [e.CidrIp, e.FromPort]), [['0.0.0.0/0', 443]]);
    });
  }
});

describe('production basics', () => {
  it('HTTPS on every public endpoint', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Protocol: 'HTTPS', Port: 443, Certificates: [{ CertificateArn: CERT }] });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Protocol: 'HTTP', DefaultActions: [Match.objectLike({ Type: 'redirect', RedirectConfig: Match.objectLike({ Protocol: 'HTTPS' }) })],
    });
    for (const [, d] of ofType('AWS::CloudFront::Distribution')) {
      assert.equal(d.Properties.DistributionConfig.DefaultCacheBehavior.ViewerProtocolPolicy, 'redirect-to-https');
    }
  });
  it('CORS for the web origins only, and throttling', () => {
    const api = ofType('AWS::ApiGatewayV2::Api')[0][1];
    const origins = api.Properties.CorsConfiguration.AllowOrigins;
    assert.equal(origins.length, 2);
    assert.ok(!origins.includes('*'));
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', { DefaultRouteSettings: Match.objectLike({ ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 }) });
  });
  it('per-route throttles: sign-in and sign-up tightest, every command route throttled', () => {
    const [[stageId, stage]] = ofType('AWS::ApiGatewayV2::Stage');
    const settings = stage.Properties.RouteSettings as Record<string, { ThrottlingRateLimit: number; ThrottlingBurstLimit: number }>;
    for (const key of AUTH_ROUTES) assert.deepEqual(settings[key], { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 }, key);
    const routeKeys = [...templateRoutes().keys()];
    const commands = routeKeys.filter(isCommandRoute);
    assert.ok(commands.length >= 7, `command routes: ${commands}`);
    for (const key of commands) assert.deepEqual(settings[key], { ThrottlingRateLimit: 200, ThrottlingBurstLimit: 400 }, key);
    // Every throttled key is a route of the API, and the stage waits for the routes.
    for (const key of Object.keys(settings)) assert.ok(routeKeys.includes(key), key);
    const routeIds = ofType('AWS::ApiGatewayV2::Route').map(([id]) => id);
    const dependsOn = (template.toJSON().Resources[stageId].DependsOn ?? []) as string[];
    for (const id of routeIds) assert.ok(dependsOn.includes(id), `stage depends on ${id}`);
  });
  it('a WAF rate-based rule per client IP on the hub load balancer (answering 429)', () => {
    const [[aclId, acl]] = ofType('AWS::WAFv2::WebACL');
    assert.equal(acl.Properties.Scope, 'REGIONAL');
    const rule = acl.Properties.Rules[0];
    assert.deepEqual(rule.Statement.RateBasedStatement, { Limit: 300, AggregateKeyType: 'IP', EvaluationWindowSec: 300 });
    assert.equal(rule.Action.Block.CustomResponse.ResponseCode, 429);
    const [[albId]] = ofType('AWS::ElasticLoadBalancingV2::LoadBalancer');
    template.hasResourceProperties('AWS::WAFv2::WebACLAssociation', {
      ResourceArn: { Ref: albId }, WebACLArn: { 'Fn::GetAtt': [aclId, 'Arn'] },
    });
  });
  it('database backups with retention, encrypted storage; log retention everywhere', () => {
    template.hasResourceProperties('AWS::RDS::DBInstance', { BackupRetentionPeriod: 7, StorageEncrypted: true });
    for (const [id, g] of ofType('AWS::Logs::LogGroup')) assert.ok(g.Properties.RetentionInDays > 0, id);
  });
  it('alarms on health: hub targets, every service, API 5xx, function errors', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    assert.ok(alarms.some((a) => a.MetricName === 'UnHealthyHostCount'));
    const running = alarms.filter((a) => a.MetricName === 'RunningTaskCount');
    assert.equal(running.length, ofType('AWS::ECS::Service').length);
    assert.ok(alarms.some((a) => a.MetricName === '5xx'));
    assert.equal(alarms.filter((a) => a.MetricName === 'Errors').length, Object.keys(FUNCTIONS).length);
    for (const a of alarms) assert.equal(a.AlarmActions.length, 1);
  });
});

describe('services and the NATS cluster', () => {
  const containers = ofType('AWS::ECS::TaskDefinition').flatMap(([, td]) => td.Properties.ContainerDefinitions);
  it('engine writer and standby: same settings, different ENGINE_ID', () => {
    const engines = containers.filter((c: any) => c.Command?.[0] === 'engine');
    assert.equal(engines.length, 2);
    const without = (c: any) => JSON.stringify(c.Environment.filter((e: any) => e.Name !== 'ENGINE_ID'));
    assert.equal(without(engines[0]), without(engines[1]));
    const ids = engines.map((c: any) => c.Environment.find((e: any) => e.Name === 'ENGINE_ID').Value);
    assert.notEqual(ids[0], ids[1]);
  });
  it('every long-lived binary runs as a service from the one image', () => {
    const commands = containers.map((c: any) => c.Command?.[0]).filter(Boolean).sort();
    for (const bin of ['engine', 'persist', 'candle_ingest', 'price-feed', 'ws-hub', 'migrate']) assert.ok(commands.includes(bin), bin);
    // ... and the image has each binary a task runs.
    const dockerfile = fs.readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
    const built = new Set([...dockerfile.matchAll(/--bin\s+(\S+)/g)].map((m) => m[1]));
    const ours = containers.filter((c: any) => typeof c.Image !== 'string');
    for (const c of ours) assert.ok(built.has(c.Command[0]), `${c.Command[0]} is not built by the Dockerfile`);
    assert.ok(ours.length >= 7);
  });
  it('NATS: three JetStream servers on their own EFS directories, routed to each other', () => {
    const nats = containers.filter((c: any) => c.Image === 'nats:2.10-alpine');
    assert.equal(nats.length, 3);
    for (const c of nats) {
      const cmd = c.Command.join(' ');
      assert.match(cmd, /--jetstream/);
      for (const n of ['nats-0', 'nats-1', 'nats-2']) assert.match(cmd, new RegExp(`nats://${n}\\.exness-dev\\.internal:6222`));
      assert.ok(c.HealthCheck);
      assert.equal(c.MountPoints[0].ContainerPath, '/data');
    }
    assert.equal(ofType('AWS::EFS::AccessPoint').length, 3);
    const replicas = containers.find((c: any) => String(c.Image).startsWith('natsio/nats-box'));
    for (const s of ['ENGINE', 'EVENTS', 'TRADES', 'KV_ENGINE_LOCK', 'DEAD_LETTERS']) assert.match(replicas.Command.join(' '), new RegExp(`\\b${s}\\b`));
    assert.match(replicas.Command.join(' '), /--replicas 3/);
  });
  it('the hub is behind the ALB on 7070; MongoDB is off by default and a secret when on', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Port: 7070, Protocol: 'HTTP', HealthCheckPort: '7071', HealthCheckPath: '/healthz',
    });
    const hub = containers.find((c: any) => c.Command?.[0] === 'ws-hub');
    assert.ok(hub.Environment.some((e: any) => e.Name === 'WS_HEALTH_ADDR' && e.Value === '0.0.0.0:7071'));
    assert.ok(!containers.some((c: any) => (c.Secrets ?? []).some((s: any) => s.Name === 'MONGODB_URL')));
    const withMongo = synth({ mongo: 'true', stage: 'test' }).toJSON().Resources as Record<string, any>;
    const engines = Object.values(withMongo).filter((r: any) => r.Type === 'AWS::ECS::TaskDefinition')
      .flatMap((r: any) => r.Properties.ContainerDefinitions).filter((c: any) => c.Command?.[0] === 'engine');
    for (const c of engines) assert.ok(c.Secrets.some((s: any) => s.Name === 'MONGODB_URL'));
  });
});

describe('metrics in CloudWatch', () => {
  const tasks = ofType('AWS::ECS::TaskDefinition').map(([id, td]) => [id, td.Properties.ContainerDefinitions] as [string, any[]]);
  const longLived = ['engine', 'persist', 'candle_ingest', 'price-feed', 'ws-hub'];
  it('every long-lived binary serves /metrics and a CloudWatch agent sidecar scrapes it', () => {
    const observed = tasks.filter(([, cs]) => cs.some((c: any) => longLived.includes(c.Command?.[0])));
    assert.equal(observed.length, 6); // two engines
    for (const [id, cs] of observed) {
      const app = cs.find((c: any) => longLived.includes(c.Command?.[0]));
      assert.ok(app.Environment.some((e: any) => e.Name === 'METRICS_ADDR' && e.Value === `0.0.0.0:${METRICS_PORT}`), id);
      const agent = cs.find((c: any) => c.Image === CW_AGENT_IMAGE);
      assert.ok(agent, `${id}: no CloudWatch agent`);
      assert.equal(agent.Essential, false, `${id}: a metrics outage must not stop the service`);
      const env = Object.fromEntries(agent.Environment.map((e: any) => [e.Name, e.Value]));
      assert.match(env.PROMETHEUS_CONFIG_CONTENT, new RegExp(`localhost:${METRICS_PORT}`));
      const config = JSON.parse(env.CW_CONFIG_CONTENT);
      const emf = config.logs.metrics_collected.prometheus.emf_processor;
      assert.equal(emf.metric_namespace, 'Exness/dev');
      assert.deepEqual(emf.metric_declaration[0].metric_selectors, EXPORTED_METRICS.map((m) => `^${m}$`));
    }
    const migrate = tasks.find(([, cs]) => cs.some((c: any) => c.Command?.[0] === 'migrate'))!;
    assert.ok(!migrate[1].some((c: any) => c.Image === CW_AGENT_IMAGE), 'the one-shot migrate job is not scraped');
  });
  it('every metric an alarm or the dashboard needs is exported', () => {
    for (const m of ['engine_lag_inputs', 'feed_stale', 'hub_connections', 'persist_lag']) assert.ok(EXPORTED_METRICS.includes(m), m);
  });
  it('alarms on engine lag (each engine), feed staleness and API 5xx', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    const lag = alarms.filter((a) => a.MetricName === 'engine_lag_inputs');
    assert.deepEqual(lag.map((a) => a.Dimensions[0].Value).sort(), ['engine-a', 'engine-b']);
    for (const a of lag) {
      assert.equal(a.Namespace, 'Exness/dev');
      assert.equal(a.Threshold, ENGINE_LAG_THRESHOLD);
      assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
    }
    const stale = alarms.find((a) => a.MetricName === 'feed_stale');
    assert.ok(stale);
    assert.deepEqual([stale.Namespace, stale.Dimensions[0].Value, stale.Threshold], ['Exness/dev', 'price-feed', 1]);
    assert.ok(alarms.some((a) => a.MetricName === '5xx' && a.Namespace === 'AWS/ApiGateway'));
  });
});
