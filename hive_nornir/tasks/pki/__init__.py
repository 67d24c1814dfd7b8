"""Tasks for PKI: the stage CA and host certificates."""
