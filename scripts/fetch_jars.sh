#!/usr/bin/env bash
# Puts Delta Lake's jars where local Spark finds them. Spark's Ivy resolver fetches them from
# Maven Central on the first session; should that fail, Maven fetches them into ~/.m2, which
# Spark's resolver also reads, and the session is tried again.
set -euo pipefail
python="${1:-.venv/bin/python}"
check='from carousel.spark import local_spark; local_spark("fetch-jars", cores=1).range(1).count()'
if "$python" -c "$check" >/dev/null 2>&1; then
  echo "Delta jars ready (Ivy)"
  exit 0
fi
coordinate=$("$python" -c 'from carousel.spark import delta_package; print(delta_package())')
echo "Ivy could not resolve Delta; fetching $coordinate with Maven"
mvn -q dependency:get -Dartifact="$coordinate"
"$python" -c "$check"
echo "Delta jars ready (Maven)"
