"""Tools get the source's password through the environment, never on a command line `ps` shows."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from activities.pg_source_access import for_database, tool_dsn


def test_the_password_moves_to_the_environment() -> None:
    conninfo, env = tool_dsn("postgresql://backup:s3cr%3Et@db.example:5433/postgres?sslmode=require")
    assert "s3cr" not in conninfo and env == {"PGPASSWORD": "s3cr>t"}
    assert conninfo_to_dict(conninfo) == {"user": "backup", "host": "db.example", "port": "5433",
                                          "dbname": "postgres", "sslmode": "require", "connect_timeout": "10"}


def test_no_password_no_environment() -> None:
    conninfo, env = tool_dsn(for_database("host=127.0.0.1 port=5432 user=postgres dbname=postgres", "app"))
    assert env == {} and conninfo_to_dict(conninfo)["dbname"] == "app"
