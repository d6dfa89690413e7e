import { Volume } from "@cdktf/provider-digitalocean/lib/volume";
import { Construct } from "constructs";

import { VolumeMount } from "../cloud-init/volume";

export interface DataVolumeProps {
  /**
   * The volume's name on DigitalOcean, such as `foobar-web-01-mysql`. It is
   * also its device name on the droplet; changing it replaces the volume.
   */
  readonly name: string;
  readonly region: string;
  /** Size in GiB; it can grow in place, never shrink. */
  readonly sizeGib: number;
  /**
   * What the volume holds, in a sentence. The provider replaces a volume
   * whose description changes, so this text is part of the volume's identity.
   */
  readonly description: string;
  /** Where the droplet mounts it, such as `/var/lib/mysql`. */
  readonly mountPoint: string;
  /** The filesystem label given when it is formatted (at most 16 characters). */
  readonly label: string;
  /** Units that must not start before it is mounted. */
  readonly requiredBy: readonly string[];
  /**
   * Let Terraform delete the volume (`cdktf destroy`, or a change that
   * replaces it). Without it Terraform stops with an error before it deletes
   * anything (`lifecycle.prevent_destroy`). A volume whose block leaves the
   * configuration is not guarded by this flag: the stack's `removed` blocks
   * keep it (see `forgetWhenRemoved`).
   *
   * @default false
   */
  readonly allowDeletion?: boolean;
}

/** The construct id of the volume resource inside a `DataVolume`: part of its Terraform address. */
export const DATA_VOLUME_RESOURCE_ID = "volume";

/** The largest volume DigitalOcean creates, in GiB. */
export const MAX_VOLUME_SIZE_GIB = 16 * 1024;

/**
 * A block storage volume for data that must outlive its droplet: attached at
 * the droplet's creation, formatted on first boot only if blank, and
 * protected from deletion unless the operator allows it.
 */
export class DataVolume extends Construct {
  public readonly volume: Volume;
  /** What the droplet's cloud-config needs to mount it. */
  public readonly mount: VolumeMount;

  constructor(scope: Construct, id: string, props: DataVolumeProps) {
    super(scope, id);
    if (props.label.length > 16) throw new Error(`DataVolume label "${props.label}" is longer than ext4's 16 characters`);
    this.volume = new Volume(this, DATA_VOLUME_RESOURCE_ID, {
      name: props.name,
      region: props.region,
      size: props.sizeGib,
      description: props.description,
      lifecycle: { preventDestroy: !(props.allowDeletion ?? false) },
    });
    this.mount = { volumeName: props.name, mountPoint: props.mountPoint, label: props.label, requiredBy: props.requiredBy };
  }
}
