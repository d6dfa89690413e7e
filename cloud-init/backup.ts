/**
 * Backups of the MySQL data to a Spaces bucket, encrypted on the droplet (see docs/database.md, "Backups").
 */

/** What a web server needs to back its database up. */
export interface BackupInput {
  /** The Spaces bucket the stack created for backups. */
  readonly bucket: string;
  /** Its Spaces region, such as `nyc3`: the endpoint is `https://<region>.digitaloceanspaces.com`. */
  readonly region: string;
  /** The age recipient (`age1…`) every backup is encrypted to; its identity never reaches a droplet. */
  readonly recipient: string;
  /** Terraform token of the bucket-scoped Spaces key's access key id. */
  readonly accessKeyId: string;
  /** Terraform token of the bucket-scoped Spaces key's secret. */
  readonly secretAccessKey: string;
  /** Hours between base backups. */
  readonly everyHours: number;
}

/** The S3 endpoint of a Spaces region, without scheme. */
export function spacesEndpoint(region: string): string {
  return `${region}.digitaloceanspaces.com`;
}
