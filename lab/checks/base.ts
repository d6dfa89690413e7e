/** The default configuration's checks before the database checks, in the order they run. */
import { accessChecks } from "./access";
import { bootChecks } from "./boot";
import { dayTwoChecks } from "./day-two";
import { faultChecks } from "./faults";
import type { Check } from "./helpers";
import { httpsChecks } from "./https";
import { isolationChecks } from "./isolation";
import { secretChecks } from "./secrets";
import { trafficChecks } from "./traffic";

export const checks: Check[] = [
  ...bootChecks,
  ...isolationChecks,
  ...httpsChecks,
  ...trafficChecks,
  ...accessChecks,
  ...secretChecks,
  ...faultChecks,
  ...dayTwoChecks,
];
