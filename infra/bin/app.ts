// The CDK app: one environment-agnostic stack, `exness-<stage>`, from the context parameters
// (lib/config.ts). `npx cdk synth` needs no AWS credentials; `npx cdk deploy` does.
import { App, Tags } from 'aws-cdk-lib';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readConfig } from '../lib/config.js';
import { PlatformStack } from '../lib/stack.js';

const infraDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const app = new App();
const config = readConfig((key) => app.node.tryGetContext(key), infraDir);
const stack = new PlatformStack(app, `exness-${config.stage}`, {
  config,
  infraDir,
  description: `exness-rs trading platform (${config.stage})`,
});
Tags.of(stack).add('project', 'exness-rs');
Tags.of(stack).add('stage', config.stage);
app.synth();
