"""The foobar sample application: a guestbook of short messages (WSGI, python3-pymysql).

Writes go to the MySQL primary. Reads come from this server's MySQL, or from
the primary when the local data is older than FOOBAR_REPLICA_MAX_LAG seconds
or a local query fails; with no primary, a replica serves what it has. A
server's data is as old as its newest heartbeat (a row the primary rewrites
every second, see cloud-init/mysql.ts), known also when replication stopped.

  GET  /health             503 when this server should leave the load balancer
  GET  /api/messages       the 20 newest messages and the count
  GET  /api/messages/<id>  one message
  POST /api/messages       {"body": "..."}; 503 at once when there is no primary
Reads say how old their data is: data_age_seconds, and the X-Data-Age header.

Each thread keeps its connections (to this server's MySQL and to the
primary) open across requests, and reads this server's role and data age at
most once a second; a connection that fails is dropped and opened again.
"""

import json
import os
import threading
import time

import pymysql
import pymysql.cursors

SERVER_NAME = os.environ.get("FOOBAR_SERVER_NAME", "unknown")
PRIMARY_HOST = os.environ.get("FOOBAR_DB_PRIMARY_HOST", "127.0.0.1")
LOCAL_SOCKET = os.environ.get("FOOBAR_DB_LOCAL_SOCKET", "/run/mysqld/mysqld.sock")
DB_NAME = os.environ.get("FOOBAR_DB_NAME", "foobar")
DB_USER = os.environ.get("FOOBAR_DB_USER", "foobar_app")
DB_PASSWORD = os.environ.get("FOOBAR_DB_PASSWORD", "")
MAX_LAG_SECONDS = int(os.environ.get("FOOBAR_REPLICA_MAX_LAG", "10"))
# Written every second by the database agent: the primary's address as it resolved it past DNS caches.
AGENT_STATUS = os.environ.get("FOOBAR_DB_AGENT_STATUS", "/run/foobar/db-agent.json")
# An older status is not trusted (the agent stopped): writes go by name again.
AGENT_STATUS_MAX_AGE_SECONDS = 5
MAX_BODY_BYTES = 4096
# A write without a primary fails well before a client gives up.
PRIMARY_CONNECT_TIMEOUT_SECONDS = 2
# How long a thread trusts what it last read of a database's role and data age.
STATE_TTL_SECONDS = 1.0
# A connection to the primary idle longer than this is pinged before it is used,
# so that a write is never sent on a connection the server already closed (a
# restart, a promotion): the ping reconnects, and asks the primary's name again.
IDLE_PING_SECONDS = 1.0


# COUNT(*) with no WHERE makes InnoDB scan with parallel threads (4 by default):
# on a table this size, starting them costs ten times the count itself, and
# under load the threads pile up. One thread per statement, for this app only.
SESSION_SETUP = "SET SESSION innodb_parallel_read_threads = 1"


class NoPrimary(Exception):
    pass


def connect_local():
    return pymysql.connect(
        unix_socket=LOCAL_SOCKET, user=DB_USER, password=DB_PASSWORD, database=DB_NAME,
        connect_timeout=2, read_timeout=5, write_timeout=5, autocommit=True,
        cursorclass=pymysql.cursors.DictCursor, init_command=SESSION_SETUP,
    )


def agent_status():
    """The database agent's last status ({} when missing or stale)."""
    try:
        with open(AGENT_STATUS, encoding="utf-8") as handle:
            status = json.load(handle)
    except (OSError, ValueError):
        return {}
    fresh = isinstance(status, dict) and time.time() - float(status.get("updated") or 0) <= AGENT_STATUS_MAX_AGE_SECONDS
    return status if fresh else {}


def primary_host():
    """Where writes go: the address the agent resolved (a promotion is seen within a second, where this
    server's DNS cache may keep the old address for a whole TTL), else the record's name."""
    return agent_status().get("primary_address") or PRIMARY_HOST


def connect_primary():
    # A promotion moves the record. TLS is required over the network.
    return pymysql.connect(
        host=primary_host(), port=3306, user=DB_USER, password=DB_PASSWORD, database=DB_NAME,
        connect_timeout=PRIMARY_CONNECT_TIMEOUT_SECONDS, read_timeout=5, write_timeout=5, autocommit=True,
        cursorclass=pymysql.cursors.DictCursor, ssl={"check_hostname": False}, init_command=SESSION_SETUP,
    )


_thread = threading.local()


def connection_to(name):
    """This thread's open connection to "local" or "primary", opened if it has none."""
    opened = getattr(_thread, name, None)
    if opened is None:
        opened = [connect_local() if name == "local" else connect_primary(), time.monotonic()]
        setattr(_thread, name, opened)
    elif name == "primary" and time.monotonic() - opened[1] > IDLE_PING_SECONDS:
        opened[0].ping(reconnect=True)
    opened[1] = time.monotonic()
    return opened[0]


def drop_connection(name):
    """Closes this thread's connection `name` after a failure; the next use opens a new one."""
    opened = getattr(_thread, name, None)
    setattr(_thread, name, None)
    setattr(_thread, f"{name}_state", None)
    if opened is not None:
        try:
            opened[0].close()
        except Exception:  # Already broken: nothing to close cleanly.
            pass


def on_connection(name, work, safe_to_repeat=False):
    """work(connection) on this thread's connection `name`; a MySQL error drops the connection and is raised.

    With `safe_to_repeat` (reads on this server's own MySQL), work that failed
    on a kept connection is tried once more on a new one: a kept connection may
    have died since its last use (a restart of that MySQL), which says nothing
    about the server now. Not over the network, where a failure can be a
    timeout that a second try would only double.
    """
    kept = getattr(_thread, name, None) is not None
    connection = connection_to(name)
    try:
        return work(connection)
    except pymysql.MySQLError:
        drop_connection(name)
        if safe_to_repeat and kept:
            return on_connection(name, work)
        raise


def state_of(name):
    """(writable, data age) of the database `name`, read at most once a second per thread."""
    cached = getattr(_thread, f"{name}_state", None)
    now = time.monotonic()
    if cached is None or now - cached[0] > STATE_TTL_SECONDS:
        writable, age = on_connection(name, lambda connection: (is_writable(connection), data_age_seconds(connection)), safe_to_repeat=name == "local")
        cached = (now, writable, age)
        setattr(_thread, f"{name}_state", cached)
    return cached[1], cached[2]


def data_age_seconds(connection):
    """Seconds since this database's newest heartbeat; None before the first."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT TIMESTAMPDIFF(MICROSECOND, beat, NOW(3)) / 1000000 AS age FROM heartbeat WHERE id = 1")
        row = cursor.fetchone()
    return None if row is None or row["age"] is None else max(0.0, float(row["age"]))


def is_writable(connection):
    """The role is what MySQL says now (the database agent changes it), not what the server was set up as."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@GLOBAL.super_read_only AS ro")
        return cursor.fetchone()["ro"] == 0


def is_fresh(age):
    return age is not None and age <= MAX_LAG_SECONDS


def age_via(connect):
    """The data age of the database `connect` reaches, or None when it does not answer."""
    try:
        connection = connect()
        try:
            return data_age_seconds(connection)
        finally:
            connection.close()
    except pymysql.MySQLError:
        return None


def replication_state(connection):
    """This server's replication as reported by SHOW REPLICA STATUS, or None on the primary."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW REPLICA STATUS")
        row = cursor.fetchone()
    if row is None:
        return None
    return {
        "source_host": row.get("Source_Host"),
        "io_running": row.get("Replica_IO_Running"),
        "sql_running": row.get("Replica_SQL_Running"),
        "lag_seconds": row.get("Seconds_Behind_Source"),
        "auto_position": bool(row.get("Auto_Position")),
        "last_error": row.get("Last_Error") or row.get("Last_IO_Error") or "",
        "received_gtid_set": (row.get("Retrieved_Gtid_Set") or "").replace("\n", ""),
        "executed_gtid_set": (row.get("Executed_Gtid_Set") or "").replace("\n", ""),
    }


def semi_sync_state(connection):
    """On the primary: whether commits wait for a replica's acknowledgement now, and how many replicas give one.

    Off means a 201 is on this server only until a replica catches up (the
    primary stopped waiting after FOOBAR_DB_SEMI_SYNC_TIMEOUT without an
    acknowledgement)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('Rpl_semi_sync_source_status', 'Rpl_semi_sync_source_clients')"
        )
        status = {row["Variable_name"]: row["Value"] for row in cursor.fetchall()}
    seen = agent_status().get("semi_sync") or {}
    return {
        "acknowledging": status.get("Rpl_semi_sync_source_status") == "ON",
        "replicas_acknowledging": int(status.get("Rpl_semi_sync_source_clients") or 0),
        # Since when it is so, as the database agent saw it change (at the latest, since the agent started).
        "since": seen.get("since"),
    }


def local_status():
    """(role now, replication, data age, why unfit to serve or ''); role None: unreachable.

    Unfit: its MySQL is unreachable, or its data is stale while the primary
    has fresher data. A replica whose primary is gone keeps serving.
    """
    try:
        connection = connect_local()
    except pymysql.MySQLError as error:
        return None, None, None, f"local MySQL unreachable: {error.args[-1]}"
    try:
        primary = is_writable(connection)
        state = {"semi_sync": semi_sync_state(connection)} if primary else replication_state(connection)
        age = data_age_seconds(connection)
    except pymysql.MySQLError as error:
        return None, None, None, f"local MySQL query failed: {error.args[-1]}"
    finally:
        connection.close()
    role = "primary" if primary else "replica"
    if not primary and not is_fresh(age) and is_fresh(age_via(connect_primary)):
        return role, state, age, f"data is {describe_age(age)} old, more than {MAX_LAG_SECONDS} s, and the primary has fresher data"
    return role, state, age, ""


def describe_age(age):
    return "of unknown age" if age is None else f"{age:.1f} s"


def read(query):
    """(query(cursor), where, data age) from this server's MySQL when fresh,
    else the primary; on a failed connection or query, the other one."""
    candidates = ["local-replica", "primary"]
    try:
        writable, age = state_of("local")
        if writable:
            candidates = ["local", "primary"]
        elif not is_fresh(age):
            candidates.reverse()
    except pymysql.MySQLError:
        candidates.reverse()
    last_error = None
    for where in candidates:
        name = "primary" if where == "primary" else "local"

        def run(connection):
            with connection.cursor() as cursor:
                return query(cursor)

        try:
            result = on_connection(name, run, safe_to_repeat=name == "local")
            return result, where, state_of(name)[1]
        except pymysql.MySQLError as error:
            last_error = error
    raise last_error


def health(_environ):
    role, state, age, problem = local_status()
    body = {
        "server": SERVER_NAME,
        "role": role,
        "status": "ok" if not problem else "unhealthy",
        "database": {
            "reachable": role is not None,
            "replication": state,
            "data_age_seconds": age,
            "max_lag_seconds": MAX_LAG_SECONDS,
        },
    }
    if problem:
        body["problem"] = problem
    return ("200 OK" if not problem else "503 Service Unavailable"), body


def list_messages(_environ):
    def query(cursor):
        cursor.execute("SELECT COUNT(*) AS count FROM messages")
        count = cursor.fetchone()["count"]
        cursor.execute("SELECT id, body, written_by, created_at FROM messages ORDER BY id DESC LIMIT 20")
        return count, cursor.fetchall()

    (count, rows), read_from, age = read(query)
    return "200 OK", {"served_by": SERVER_NAME, "read_from": read_from, "data_age_seconds": age, "count": count, "messages": rows}


def get_message(_environ, message_id):
    def query(cursor):
        cursor.execute("SELECT id, body, written_by, created_at FROM messages WHERE id = %s", (message_id,))
        return cursor.fetchone()

    row, read_from, age = read(query)
    if row is None:
        return "404 Not Found", {"served_by": SERVER_NAME, "read_from": read_from, "data_age_seconds": age, "error": "no such message"}
    return "200 OK", {"served_by": SERVER_NAME, "read_from": read_from, "data_age_seconds": age, "message": row}


def post_message(environ):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0 or length > MAX_BODY_BYTES:
        return "400 Bad Request", {"error": f"send a JSON body of 1 to {MAX_BODY_BYTES} bytes"}
    try:
        text = json.loads(environ["wsgi.input"].read(length))["body"]
    except (ValueError, KeyError, TypeError):
        return "400 Bad Request", {"error": 'send {"body": "..."}'}
    if not isinstance(text, str) or not 1 <= len(text) <= 280:
        return "400 Bad Request", {"error": "body must be a string of 1 to 280 characters"}
    def insert(connection):
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO messages (body, written_by) VALUES (%s, %s)", (text, SERVER_NAME))
            return cursor.lastrowid

    # Twice at most, and only after a read-only refusal, which wrote nothing: a
    # connection opened before a promotion reaches the old primary, and a new
    # one asks the primary's name again.
    for attempt in (1, 2):
        try:
            connection_to("primary")
        except pymysql.MySQLError as error:
            drop_connection("primary")
            raise NoPrimary(f"the primary ({PRIMARY_HOST}) does not answer: {error.args[-1]}") from error
        try:
            message_id = on_connection("primary", insert)
            return "201 Created", {"id": message_id, "written_by": SERVER_NAME, "written_to": "primary"}
        except pymysql.MySQLError as error:
            # 1290/1836: read-only, as a fenced primary or one not yet promoted is.
            if error.args[0] not in (1290, 1836):
                raise
            if attempt == 2:
                raise NoPrimary(f"{PRIMARY_HOST} is read-only: a promotion is under way") from error


def route(environ):
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "/")
    if path == "/health" and method in ("GET", "HEAD"):
        return health(environ)
    if path == "/api/messages" and method == "GET":
        return list_messages(environ)
    if path == "/api/messages" and method == "POST":
        return post_message(environ)
    if path.startswith("/api/messages/") and method == "GET" and path[len("/api/messages/"):].isdigit():
        return get_message(environ, int(path[len("/api/messages/"):]))
    return "404 Not Found", {"error": f"no route for {method} {path}"}


def application(environ, start_response):
    try:
        status, body = route(environ)
    except NoPrimary as error:
        status, body = "503 Service Unavailable", {"served_by": SERVER_NAME, "error": "no writable primary", "reason": str(error)}
    except pymysql.MySQLError as error:
        status, body = "503 Service Unavailable", {"served_by": SERVER_NAME, "error": f"database: {error.args[-1]}"}
    payload = json.dumps(body, default=str).encode("utf-8")
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    if "data_age_seconds" in body:
        age = body["data_age_seconds"]
        headers.append(("X-Data-Age", "unknown" if age is None else f"{age:.1f}"))
    start_response(status, headers)
    return [payload]
