import { Password } from "@cdktf/provider-random/lib/password";
import { Construct } from "constructs";

/** Length of every generated password. */
export const PASSWORD_LENGTH = 32;

/**
 * Letters and digits only: the values go into config files, environment
 * files and SQL without quoting rules to get wrong.
 */
export const PASSWORD_OPTIONS = { length: PASSWORD_LENGTH, special: false, minUpper: 2, minLower: 2, minNumeric: 2 };

/**
 * The MySQL passwords, generated at apply time by Terraform: they are in the
 * Terraform state, never in this repository or in `cdk.tf.json`.
 */
export class DatabasePasswords extends Construct {
  /** Password of the replication user. */
  public readonly replication: Password;
  /** Password of the application's user. */
  public readonly app: Password;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.replication = new Password(this, "replication", PASSWORD_OPTIONS);
    this.app = new Password(this, "app", PASSWORD_OPTIONS);
  }
}
