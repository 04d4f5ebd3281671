// The cloud's abuse limits, in front of the functions' own (README "Limits"):
// - per-route throttles on the HTTP API stage: sign-in and sign-up far tighter than the stage
//   default, trading and alert commands in between. API Gateway throttles are per route for
//   all callers together (a token bucket per route key), not per client: they cap what an
//   attack can make the functions do; the per-client limits are the functions' own (keyed on
//   API Gateway's sourceIp) and, for the hub, WAF's.
// - a WAF web ACL with a rate-based rule per client IP on the hub's load balancer. An HTTP API
//   (API Gateway v2) cannot carry a web ACL (WAF attaches to REST APIs, ALBs, CloudFront,
//   AppSync, Cognito, App Runner, Verified Access): the API relies on the throttles above and
//   the functions' per-address, per-email and per-account limits.
import { CfnStage } from 'aws-cdk-lib/aws-apigatewayv2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct, IDependable } from 'constructs';
import { Config } from './config.js';

/** Route keys of sign-in and sign-up (the tightest throttle). */
export const AUTH_ROUTES = ['POST /api/v1/auth/signin', 'POST /api/v1/auth/signup'];

/** Whether a route key is a trading or alert command (the functions' `limits::limited`). */
export const isCommandRoute = (routeKey: string): boolean =>
  routeKey.startsWith('POST /api/v1/trade/') || routeKey === 'POST /api/v1/alerts' || routeKey.startsWith('POST /api/v1/alerts/');

/**
 * Per-route throttles on `stage` for the routes among `routeKeys`. The stage must be created
 * after the routes it names (CloudFormation refuses settings for an unknown route key).
 */
export function routeThrottles(stage: CfnStage, routeKeys: string[], routes: IDependable[], config: Config): void {
  // `RouteSettings` is a JSON map in CloudFormation: CDK passes it as written, so the keys
  // are CloudFormation's own (PascalCase).
  const settings: Record<string, { ThrottlingRateLimit: number; ThrottlingBurstLimit: number }> = {};
  for (const key of routeKeys) {
    if (AUTH_ROUTES.includes(key)) {
      settings[key] = { ThrottlingRateLimit: config.authThrottleRatePerSecond, ThrottlingBurstLimit: config.authThrottleBurst };
    } else if (isCommandRoute(key)) {
      settings[key] = { ThrottlingRateLimit: config.commandThrottleRatePerSecond, ThrottlingBurstLimit: config.commandThrottleBurst };
    }
  }
  stage.routeSettings = settings;
  for (const route of routes) stage.node.addDependency(route);
}

/** A regional web ACL on `alb`: at most `hubRequestsPer5Min` requests per client IP. */
export function hubWebAcl(scope: Construct, alb: elbv2.ApplicationLoadBalancer, config: Config): wafv2.CfnWebACL {
  const visibility = (name: string) => ({ cloudWatchMetricsEnabled: true, metricName: name, sampledRequestsEnabled: true });
  const acl = new wafv2.CfnWebACL(scope, 'HubWebAcl', {
    name: `exness-${config.stage}-hub`,
    description: 'Per client IP rate limit on the WebSocket hub: connects and upgrades',
    scope: 'REGIONAL',
    defaultAction: { allow: {} },
    visibilityConfig: visibility(`exness-${config.stage}-hub`),
    rules: [
      {
        name: 'PerIpRate',
        priority: 0,
        action: { block: { customResponse: { responseCode: 429, responseHeaders: [{ name: 'Retry-After', value: '300' }] } } },
        statement: { rateBasedStatement: { limit: config.hubRequestsPer5Min, aggregateKeyType: 'IP', evaluationWindowSec: 300 } },
        visibilityConfig: visibility(`exness-${config.stage}-hub-per-ip`),
      },
    ],
  });
  new wafv2.CfnWebACLAssociation(scope, 'HubWebAclAssociation', { resourceArn: alb.loadBalancerArn, webAclArn: acl.attrArn });
  return acl;
}
