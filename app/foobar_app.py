"""The foobar sample application: a guestbook of short messages.

A WSGI application for Gunicorn, using only the distribution's packages
(python3-pymysql). Writes go to the MySQL primary. Reads come from this
server's own MySQL (a replica on every server but the first) and fall back
to the primary when the local database is down or lags more than
FOOBAR_REPLICA_MAX_LAG seconds, so a reader never sees staler data than that.

Endpoints:
  GET  /health              this server, its database role and replication state;
                            503 when this server should leave the load balancer
  GET  /api/messages        the 20 newest messages and the total count
  GET  /api/messages/<id>   one message
  POST /api/messages        {"body": "..."} stores a message on the primary
"""

import json
import os

import pymysql
import pymysql.cursors

SERVER_NAME = os.environ.get("FOOBAR_SERVER_NAME", "unknown")
DB_ROLE = os.environ.get("FOOBAR_DB_ROLE", "primary")
PRIMARY_HOST = os.environ.get("FOOBAR_DB_PRIMARY_HOST", "127.0.0.1")
LOCAL_SOCKET = os.environ.get("FOOBAR_DB_LOCAL_SOCKET", "/run/mysqld/mysqld.sock")
DB_NAME = os.environ.get("FOOBAR_DB_NAME", "foobar")
DB_USER = os.environ.get("FOOBAR_DB_USER", "foobar_app")
DB_PASSWORD = os.environ.get("FOOBAR_DB_PASSWORD", "")
MAX_LAG_SECONDS = int(os.environ.get("FOOBAR_REPLICA_MAX_LAG", "10"))
MAX_BODY_BYTES = 4096


def connect_local():
    return pymysql.connect(
        unix_socket=LOCAL_SOCKET, user=DB_USER, password=DB_PASSWORD, database=DB_NAME,
        connect_timeout=2, read_timeout=5, write_timeout=5, autocommit=True,
        cursorclass=pymysql.cursors.DictCursor,
    )


def connect_primary():
    if DB_ROLE == "primary":
        return connect_local()
    # The primary requires TLS for every connection over the network.
    return pymysql.connect(
        host=PRIMARY_HOST, port=3306, user=DB_USER, password=DB_PASSWORD, database=DB_NAME,
        connect_timeout=2, read_timeout=5, write_timeout=5, autocommit=True,
        cursorclass=pymysql.cursors.DictCursor, ssl={"check_hostname": False},
    )


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
    }


def replica_is_fresh(state):
    return (
        state is not None
        and state["io_running"] == "Yes"
        and state["sql_running"] == "Yes"
        and state["lag_seconds"] is not None
        and state["lag_seconds"] <= MAX_LAG_SECONDS
    )


def local_status():
    """(reachable, replication state, reason this server is unfit to serve, or '')."""
    try:
        connection = connect_local()
    except pymysql.MySQLError as error:
        return False, None, f"local MySQL unreachable: {error.args[-1]}"
    try:
        state = replication_state(connection) if DB_ROLE == "replica" else None
    finally:
        connection.close()
    if DB_ROLE == "replica" and not replica_is_fresh(state):
        return True, state, f"replica not running or lagging more than {MAX_LAG_SECONDS} s"
    return True, state, ""


def open_for_reads():
    """A connection for reads and where it goes: this server's MySQL when fresh, else the primary."""
    if DB_ROLE == "primary":
        return connect_local(), "local"
    try:
        connection = connect_local()
        if replica_is_fresh(replication_state(connection)):
            return connection, "local-replica"
        connection.close()
    except pymysql.MySQLError:
        pass
    return connect_primary(), "primary"


def health(_environ):
    reachable, state, problem = local_status()
    body = {
        "server": SERVER_NAME,
        "role": DB_ROLE,
        "status": "ok" if not problem else "unhealthy",
        "database": {"reachable": reachable, "replication": state, "max_lag_seconds": MAX_LAG_SECONDS},
    }
    if problem:
        body["problem"] = problem
    return ("200 OK" if not problem else "503 Service Unavailable"), body


def list_messages(_environ):
    connection, read_from = open_for_reads()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) AS count FROM messages")
            count = cursor.fetchone()["count"]
            cursor.execute("SELECT id, body, written_by, created_at FROM messages ORDER BY id DESC LIMIT 20")
            rows = cursor.fetchall()
    finally:
        connection.close()
    return "200 OK", {"served_by": SERVER_NAME, "read_from": read_from, "count": count, "messages": rows}


def get_message(_environ, message_id):
    connection, read_from = open_for_reads()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, body, written_by, created_at FROM messages WHERE id = %s", (message_id,))
            row = cursor.fetchone()
    finally:
        connection.close()
    if row is None:
        return "404 Not Found", {"served_by": SERVER_NAME, "read_from": read_from, "error": "no such message"}
    return "200 OK", {"served_by": SERVER_NAME, "read_from": read_from, "message": row}


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
    connection = connect_primary()
    try:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO messages (body, written_by) VALUES (%s, %s)", (text, SERVER_NAME))
            message_id = cursor.lastrowid
    finally:
        connection.close()
    return "201 Created", {"id": message_id, "written_by": SERVER_NAME, "written_to": "primary"}


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
    except pymysql.MySQLError as error:
        status, body = "503 Service Unavailable", {"served_by": SERVER_NAME, "error": f"database: {error.args[-1]}"}
    payload = json.dumps(body, default=str).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]
