# DRBD disk probe (read-only): does VG "$1" exist; size and partitions of every existing device after it.
# Sourced inside a shell function by hive_nornir's drbd step: arguments are positional, never pasted.
drbd_vg=$1; shift
if vgs "$drbd_vg" >/dev/null 2>&1; then echo vg=yes; fi
for d in "$@"; do
  [ -b "$d" ] || continue
  set -- $(stat -L -c '%t %T' "$d"); sys=/sys/dev/block/$((0x$1)):$((0x$2))
  echo "disk=$d $(cat $sys/size)"
  for p in $sys/*/partition; do
    [ -f "$p" ] || continue; pd=${p%/partition}
    echo "part=$d $(cat $p) $(cat $pd/start) $(cat $pd/size)"
  done
done
