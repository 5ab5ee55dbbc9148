#!/bin/sh
# Registers the namespace the worker uses once the server answers.
set -eu
NAMESPACE=${DEFAULT_NAMESPACE:-default}

attempt=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS"; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 12 ]; then
    echo "Temporal at $TEMPORAL_ADDRESS is not healthy after $attempt attempts"
    exit 1
  fi
  sleep 5
done
temporal operator namespace describe -n "$NAMESPACE" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 ||
  temporal operator namespace create -n "$NAMESPACE" --retention 72h --address "$TEMPORAL_ADDRESS"
echo "namespace $NAMESPACE is registered"
