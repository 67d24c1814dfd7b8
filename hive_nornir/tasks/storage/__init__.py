"""Tasks for storage: DRBD and its LVM pool (LVM volumes and DRBD resources land here)."""
