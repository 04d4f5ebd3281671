// The web page and the API reference as static sites: private S3 buckets behind CloudFront
// (origin access control, HTTPS only), filled from web/dist (the web build) with a
// config.json that tells the pages where the API and the WebSocket hub are.
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3deploy from 'aws-cdk-lib/aws-s3-deployment';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Construct } from 'constructs';

export interface SiteProps {
  /** The built files (web/dist); when missing (web not built) only config.json is deployed. */
  sourceDir: string;
  /** The page served at `/`: `index.html` for the web page, `reference/index.html` for the reference. */
  indexDocument: string;
  logBucket: s3.IBucket;
  removal: RemovalPolicy;
}

export class StaticSite extends Construct {
  readonly bucket: s3.Bucket;
  readonly distribution: cloudfront.Distribution;

  constructor(scope: Construct, id: string, props: SiteProps) {
    super(scope, id);
    this.bucket = new s3.Bucket(this, 'Bucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      versioned: true,
      removalPolicy: props.removal,
      autoDeleteObjects: props.removal === RemovalPolicy.DESTROY,
    });
    this.distribution = new cloudfront.Distribution(this, 'Cdn', {
      defaultRootObject: props.indexDocument,
      defaultBehavior: {
        origin: origins.S3BucketOrigin.withOriginAccessControl(this.bucket),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        responseHeadersPolicy: cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
      },
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      enableLogging: true,
      logBucket: props.logBucket,
      logFilePrefix: `${id}/`,
      // S3 answers 403 for a missing key behind origin access control: serve the page.
      errorResponses: [403, 404].map((httpStatus) => ({
        httpStatus, responseHttpStatus: 200, responsePagePath: `/${props.indexDocument}`, ttl: Duration.minutes(1),
      })),
    });
  }

  /** Uploads the build and `config.json` ({apiUrl, wsUrl}, resolved at deploy time). */
  deploy(sourceDir: string, config: { apiUrl: string; wsUrl: string }): void {
    const sources = [s3deploy.Source.jsonData('config.json', config)];
    if (fs.existsSync(path.join(sourceDir, 'index.html'))) sources.unshift(s3deploy.Source.asset(sourceDir));
    new s3deploy.BucketDeployment(this, 'Files', {
      destinationBucket: this.bucket,
      sources,
      distribution: this.distribution,
      distributionPaths: ['/index.html', '/config.json', '/reference/*'],
      memoryLimit: 512,
    });
  }
}
