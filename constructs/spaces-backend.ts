import { S3Backend } from "cdktf";
import { Construct } from "constructs";

/** The Terraform CLI the backend needs: `use_lockfile` is generally available from 1.11. */
export const TERRAFORM_VERSION_FOR_SPACES = ">= 1.11.0";

export interface SpacesBackendProps {
  /** The Spaces bucket holding the state. */
  readonly bucket: string;
  /** The bucket's region slug, such as `nyc3`. */
  readonly region: string;
  /** The state object's key, such as `foobar-staging/terraform.tfstate`. */
  readonly key: string;
  /**
   * Lock the state with Terraform's S3 lock file (`use_lockfile`): a
   * `<key>.tflock` object written with `If-None-Match: *`.
   *
   * @default true
   */
  readonly locking?: boolean;
}

/** The S3 endpoint of a Spaces region. */
export function spacesEndpoint(region: string): string {
  return `https://${region}.digitaloceanspaces.com`;
}

/**
 * Terraform's S3 backend pointed at DigitalOcean Spaces, as DigitalOcean's
 * guide configures it, with S3-native locking.
 *
 * No credential is ever part of the configuration: Terraform reads
 * `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` from the environment at
 * init, plan and apply. The construct id is cdktf's own (`backend`).
 *
 * @see https://docs.digitalocean.com/products/spaces/reference/terraform-backend/
 * @see https://developer.hashicorp.com/terraform/language/backend/s3
 */
export class SpacesBackend extends S3Backend {
  constructor(scope: Construct, props: SpacesBackendProps) {
    super(scope, {
      bucket: props.bucket,
      key: props.key,
      endpoints: { s3: spacesEndpoint(props.region) },
      // Spaces ignores the AWS region, but the SDK signs with one; these
      // checks call AWS APIs (STS, IAM, EC2 metadata) that Spaces does not have.
      region: "us-east-1",
      skipCredentialsValidation: true,
      skipRequestingAccountId: true,
      skipMetadataApiCheck: true,
      skipRegionValidation: true,
    });
    // Not in cdktf 0.21's S3BackendConfig: Spaces rejects the newer AWS SDKs'
    // default checksums, and the lock file needs Terraform >= 1.10.
    this.addOverride("skip_s3_checksum", true);
    if (props.locking ?? true) this.addOverride("use_lockfile", true);
  }
}
