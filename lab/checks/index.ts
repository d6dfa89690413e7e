/**
 * End-to-end checks run by `npm run test:lab` against the booted lab, in the
 * order they run: each may rely on the ones before it (the fault checks come
 * after the quiet ones, the day-two checks grow the stack to three web servers
 * for the database checks; the monitoring checks run before the scaling
 * checks, on a healthy lab).
 *
 * A check returns a short evidence string when it passes and throws (with the
 * evidence of the failure) when it does not. Talk to the lab only through the
 * `Lab` handle: `lab.client([...])` for traffic (from the client namespace),
 * `lab.execIn(name, [...])` to look inside a droplet.
 */
export { backupChecks } from "./backups";
export { checks } from "./base";
export { databaseChecks } from "./database";
export { deployChecks } from "./deploy";
export type { Check } from "./helpers";
export { monitoringChecks, monitoringGroupChecks } from "./monitoring";
export { pairChecks } from "./pair";
export { pairScalingChecks, scalingChecks } from "./scaling";
