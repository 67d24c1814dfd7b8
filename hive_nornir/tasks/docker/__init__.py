"""Tasks for docker: engine, client certificates, swarm, follow-swarm-service."""
