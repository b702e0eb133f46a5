"""What the local runner starts as `spark-pipelines`: pyspark's pipelines CLI, connected to the port its server bound.

`spark-pipelines --remote local[n]` starts a Spark Connect server inside its own JVM, then connects
to it at `sc://localhost`, a URL without a port: pyspark takes Spark Connect's fixed 15002. Two runs
on one machine (the tests beside a `make run`, two users) then collide: the second cannot bind 15002.

The local runner writes `spark.connect.grpc.binding.port 0` in the run's spark-defaults.conf, so
the server binds a port the system picks, free by construction, and runs this file with
`SPARK_REMOTE=local[n]`: what `spark-pipelines --remote local[n]` does in the end, without its
launcher JVM (a JVM start and an Ivy resolution only to start Python). Before pyspark's
`pipelines/cli.py` runs, the client's default port becomes the one the server bound: what pyspark
itself does for its tests (`SPARK_TESTING`, which would change much more than the port). With a
server already up, it is the CLI unchanged.

Only pyspark is imported here: this file runs as a script, under the Python `spark-pipelines` finds.
"""

from __future__ import annotations

from pyspark.pipelines import cli
from pyspark.sql.connect.client.core import DefaultChannelBuilder

FIXED_PORT = 15002
"""Spark Connect's default port: what the client uses when no local server of this process is known."""


def bound_port() -> int:
    """The port the Spark Connect server of this process's JVM listens on (`FIXED_PORT` when none started here)."""
    from pyspark.sql.session import SparkSession

    session = SparkSession._instantiatedSession  # the classic session that started the server, as pyspark's tests read
    if session is None:
        return FIXED_PORT
    service = getattr(getattr(session._jvm, "org.apache.spark.sql.connect.service.SparkConnectService$"), "MODULE$")
    return service.localPort() if service.started() else FIXED_PORT


def main() -> None:
    DefaultChannelBuilder.default_port = staticmethod(bound_port)
    cli.main()


if __name__ == "__main__":
    main()
