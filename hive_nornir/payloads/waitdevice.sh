#!/bin/sh
# Installed by hive_nornir (drbd role): bring DRBD resource "$1" in line with its config, retrying.
tries=50
while [ "$tries" -gt 0 ]; do
  if /sbin/drbdadm adjust "$1"; then
    exit 0
  fi
  tries=$((tries - 1))
  echo "drbdadm adjust $1 failed, $tries tries left, sleeping 0.2 s" >&2
  sleep 0.2
done
echo "gave up waiting for the backing device of DRBD resource $1" >&2
exit 1
