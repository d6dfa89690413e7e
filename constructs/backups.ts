import { SpacesBucket } from "@cdktf/provider-digitalocean/lib/spaces-bucket";
import { SpacesKey } from "@cdktf/provider-digitalocean/lib/spaces-key";
import { Token } from "cdktf";
import { Construct } from "constructs";

import { SETTINGS, SPACES_BUCKET_NAME, SPACES_REGIONS } from "../settings";

export interface BackupsProps {
  /** The bucket's name (`FOOBAR_BACKUP_BUCKET`); Spaces names are unique per region. */
  readonly bucket: string;
  /** The bucket's Spaces region, such as `nyc3`. */
  readonly region: string;
  /** The Spaces key's name, such as `foobar-backups`. */
  readonly keyName: string;
  /**
   * Days a backup is kept, and an overwritten or deleted object's previous
   * version: the window in which the operator can still get it back.
   *
   * @default 30
   */
  readonly retentionDays?: number;
  /**
   * Let Terraform delete the bucket (`cdktf destroy`, or a change that
   * replaces it). Without it Terraform stops with an error before it deletes
   * anything (`lifecycle.prevent_destroy`), as for the volumes; with it the
   * bucket is still deleted only when empty (`force_destroy` is never set).
   *
   * @default false
   */
  readonly allowDeletion?: boolean;
}

/** Days a backup is kept when nothing says otherwise (`FOOBAR_BACKUP_RETENTION_DAYS`). */
export const DEFAULT_BACKUP_RETENTION_DAYS = 30;

/** The construct id of the stack's `Backups`: part of the Terraform addresses of the bucket and the key. */
export const BACKUPS_ID = "backups";
/** The construct id of the bucket inside `Backups`: part of its Terraform address. */
export const BACKUP_BUCKET_RESOURCE_ID = "bucket";

/**
 * A private, versioned Spaces bucket for the database backups, and a Spaces
 * key that can read, write and delete objects in that bucket and nothing else.
 *
 * Every object, and every previous version an overwrite or a delete leaves,
 * expires after `retentionDays`. The bucket is protected like the volumes:
 * Terraform refuses to destroy it (unless `allowDeletion`), and never empties
 * it (`force_destroy = false`).
 *
 * Creating the bucket needs Spaces keys at plan/apply time: the provider reads
 * `SPACES_ACCESS_KEY_ID` and `SPACES_SECRET_ACCESS_KEY` from the environment;
 * they are never part of the configuration.
 */
export class Backups extends Construct {
  public readonly bucket: SpacesBucket;
  public readonly key: SpacesKey;
  /** The bucket's region. */
  public readonly region: string;
  /** Token of the key's access key id (known after apply). */
  public readonly accessKeyId: string;
  /** Token of the key's secret (known after apply, in the state only). */
  public readonly secretAccessKey: string;

  constructor(scope: Construct, id: string, props: BackupsProps) {
    super(scope, id);
    const retentionDays = props.retentionDays ?? DEFAULT_BACKUP_RETENTION_DAYS;
    const known = (value: string) => !Token.isUnresolved(value);
    if (known(props.bucket) && !SPACES_BUCKET_NAME.test(props.bucket)) {
      throw new Error(
        `${SETTINGS.backupBucket.variable} must be ${SETTINGS.backupBucket.valueType.accepted}, got ${JSON.stringify(props.bucket)}`,
      );
    }
    if (known(props.region) && !(SPACES_REGIONS as readonly string[]).includes(props.region)) {
      throw new Error(`${SETTINGS.backupRegion.variable} must be one of ${SPACES_REGIONS.join(", ")}, got ${JSON.stringify(props.region)}`);
    }
    if (!Number.isInteger(retentionDays) || retentionDays < 1) {
      throw new Error(`${SETTINGS.backupRetentionDays.variable} must be a whole number of days from 1, got ${retentionDays}`);
    }

    this.region = props.region;
    this.bucket = new SpacesBucket(this, BACKUP_BUCKET_RESOURCE_ID, {
      name: props.bucket,
      region: props.region,
      acl: "private",
      forceDestroy: false,
      versioning: { enabled: true },
      lifecycleRule: [
        {
          id: "retention",
          enabled: true,
          expiration: { days: retentionDays },
          noncurrentVersionExpiration: { days: retentionDays },
          abortIncompleteMultipartUploadDays: 1,
        },
      ],
      lifecycle: { preventDestroy: !(props.allowDeletion ?? false) },
    });
    this.key = new SpacesKey(this, "key", {
      name: props.keyName,
      grant: [{ bucket: this.bucket.name, permission: "readwrite" }],
    });
    this.accessKeyId = this.key.accessKey;
    this.secretAccessKey = this.key.secretKey;
  }
}
