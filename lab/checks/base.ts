/**
 * The default configuration's checks before the database checks, in the order
 * they run. The healthy run of the monitoring checks brackets the quiet ones
 * (none injects a fault) from the first every-target-up to before the faults.
 */
import { accessChecks } from "./access";
import { bootChecks } from "./boot";
import { dayTwoChecks } from "./day-two";
import { faultChecks } from "./faults";
import type { Check } from "./helpers";
import { httpsChecks } from "./https";
import { isolationChecks } from "./isolation";
import { healthyRunEndChecks, monitoringFirstChecks } from "./monitoring-healthy";
import { secretChecks } from "./secrets";
import { trafficChecks } from "./traffic";

export const checks: Check[] = [
  ...bootChecks,
  ...monitoringFirstChecks,
  ...isolationChecks,
  ...httpsChecks,
  ...trafficChecks,
  ...accessChecks,
  ...secretChecks,
  ...healthyRunEndChecks,
  ...faultChecks,
  ...dayTwoChecks,
];
