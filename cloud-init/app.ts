import { renderEnvironmentFile } from "./environment-file";
import { dropletFile } from "./files";

/** Where the application lives on a web server, and who runs it. */
export const APP = {
  user: "foobar-app",
  directory: "/srv/foobar/app",
  staticDirectory: "/srv/foobar/app/static",
  environmentFile: "/etc/foobar/app.env",
  unitName: "foobar-app.service",
  unitPath: "/etc/systemd/system/foobar-app.service",
  port: 8000,
  healthPath: "/health",
} as const;

/**
 * Gunicorn's threads per worker: the sample app waits on MySQL, so a worker
 * serves a few requests at once; threaded workers also keep Nginx's
 * connections open (synchronous ones close each after one request).
 */
export const APP_THREADS_PER_WORKER = 4;

/**
 * Seconds Gunicorn keeps an idle connection from Nginx open. Longer than
 * Nginx keeps it (`APP_KEEPALIVE_SECONDS - 1`, see nginx.ts), so that Nginx
 * always closes first and never sends on a connection Gunicorn is closing;
 * short, because a stopping Gunicorn waits for its open connections (up to
 * its 30 s graceful timeout): a restart takes about as long as Nginx holds an
 * idle one.
 */
export const APP_KEEPALIVE_SECONDS = 3;

/**
 * Starts the sample application: Gunicorn from the distribution's packages,
 * one threaded worker per CPU of the droplet (counted when it starts, so a
 * resize needs no change), no access log (Nginx keeps one).
 * `$$` is systemd's escape for `$`: the shell, not systemd, counts the CPUs.
 */
export const DEFAULT_APP_COMMAND =
  `/bin/sh -c 'exec /usr/bin/gunicorn --bind 127.0.0.1:${APP.port} --worker-class gthread ` +
  `--workers "$$(nproc)" --threads ${APP_THREADS_PER_WORKER} --keep-alive ${APP_KEEPALIVE_SECONDS} foobar_app:application'`;

export interface AppEnvironmentInput {
  readonly serverName: string;
  /** DNS name of the MySQL primary's private address; writes go there. */
  readonly primaryHost: string;
  readonly databaseName: string;
  readonly databaseUser: string;
  /** May be a Terraform token. */
  readonly databasePassword: string;
  /** Seconds of data age beyond which reads go to the primary and, while it answers, health fails. */
  readonly replicaMaxLagSeconds: number;
  /**
   * The database agent's status file: the primary's address as the agent
   * resolved it past DNS caches (writes go there while it is fresh), and the
   * semi-sync state since when.
   */
  readonly agentStatusFile: string;
}

/**
 * Renders the application's environment file (mode 0600, owned by the
 * application's user). Reads use the local server over its socket.
 */
export function renderAppEnvironment(input: AppEnvironmentInput): string {
  return renderEnvironmentFile({
    FOOBAR_SERVER_NAME: input.serverName,
    FOOBAR_DB_PRIMARY_HOST: input.primaryHost,
    FOOBAR_DB_LOCAL_SOCKET: "/run/mysqld/mysqld.sock",
    FOOBAR_DB_NAME: input.databaseName,
    FOOBAR_DB_USER: input.databaseUser,
    FOOBAR_DB_PASSWORD: input.databasePassword,
    FOOBAR_REPLICA_MAX_LAG: String(input.replicaMaxLagSeconds),
    FOOBAR_DB_AGENT_STATUS: input.agentStatusFile,
  });
}

export interface AppUnitInput {
  /** Command line that serves HTTP on 127.0.0.1 at `APP.port`, run from `APP.directory`. */
  readonly command: string;
}

/** Renders the systemd unit that runs the application as its own unprivileged user (`cloud-init/files/etc/systemd/system/foobar-app.service`). */
export function renderAppUnit(input: AppUnitInput): string {
  return dropletFile(APP.unitPath, {
    USER: APP.user,
    DIRECTORY: APP.directory,
    ENVIRONMENT_FILE: APP.environmentFile,
    COMMAND: input.command,
  });
}
