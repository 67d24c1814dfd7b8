"""hive-builder's service phases: build-networks, build-volumes, deploy-services over each engine's docker API."""
