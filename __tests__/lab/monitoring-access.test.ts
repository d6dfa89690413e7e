import { MONITORING_PATHS, PROMETHEUS_USER } from "../../cloud-init/monitoring-server";
import { PROMETHEUS_PORTS } from "../../cloud-init/prometheus";
import { MONITORING_ACCESS } from "../../lab/checks/monitoring-helpers";

test("the lab reaches Prometheus and Alertmanager on mon-01 where the stack puts them, as the user and with the password file it writes", () => {
  expect(MONITORING_ACCESS).toEqual({
    user: PROMETHEUS_USER,
    passwordFile: MONITORING_PATHS.passwordFile,
    prometheusPort: PROMETHEUS_PORTS.prometheus,
    alertmanagerPort: PROMETHEUS_PORTS.alertmanager,
  });
});
