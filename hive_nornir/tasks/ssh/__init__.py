"""Tasks for SSH: first contact and facts, sshd hardening, source restrictions."""
