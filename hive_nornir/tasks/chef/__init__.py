"""Tasks for Chef Server HA and fleet runs: none yet."""
