/**
 * The operator's age identity, emulated: the lab makes one per `up` on the
 * host (the operator's machine), gives the stack its recipient, and hands the
 * identity file to `npm run restore` only. No droplet ever sees it.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import { run } from "../host/shell";
import { LabState, saveState } from "../host/state";
import { stateDir } from "../settings";

/** Makes the identity (root only) and returns its recipient. */
export function createBackupIdentity(state: LabState): string {
  const file = path.join(stateDir(), "backup-identity.txt");
  fs.rmSync(file, { force: true });
  run("age-keygen", ["-o", file]);
  fs.chmodSync(file, 0o600);
  const recipient = run("age-keygen", ["-y", file]).trim();
  state.backupIdentity = { file, recipient };
  saveState(state);
  return recipient;
}
