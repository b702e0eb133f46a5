#!/usr/bin/env bash
# Puts the JVM pieces where the project finds them: Delta Lake's and Spark's Kafka jars where local
# Spark finds them, and the local Kafka broker's jars in the virtual environment.
# Spark's Ivy resolver fetches its packages from Maven Central on the first session; should that
# fail, Maven fetches them into ~/.m2, which Spark's resolver also reads, and the session is tried again.
set -euo pipefail
python="${1:-.venv/bin/python}"
check='from carousel.spark import local_spark; local_spark("fetch-jars", cores=1, kafka=True).range(1).count()'
if "$python" -c "$check" >/dev/null 2>&1; then
  echo "Delta and Kafka jars for Spark ready (Ivy)"
else
  coordinates=$("$python" -c 'from carousel.spark import spark_packages; print(spark_packages(kafka=True))')
  echo "Ivy could not resolve $coordinates; fetching them with Maven"
  for coordinate in ${coordinates//,/ }; do
    mvn -q dependency:get -Dartifact="$coordinate"
  done
  "$python" -c "$check"
  echo "Delta and Kafka jars for Spark ready (Maven)"
fi
"$python" -c 'from carousel.local.kafka_broker import broker_jars; print("Kafka broker jars ready in", broker_jars())'
