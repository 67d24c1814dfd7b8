"""Tasks for repository server: registry and backups."""
