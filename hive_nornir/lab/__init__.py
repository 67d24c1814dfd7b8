"""Local Docker lab: builds the systemd host image the docker provider runs."""

from hive_nornir.lab.build import BASE_TAG, HOST_TAG, LabImageError, ensure_image

__all__ = ["BASE_TAG", "HOST_TAG", "LabImageError", "ensure_image"]
