"""Tasks for host basics: packages, names, time, /etc/hosts, users, the admin's venv, site addons."""
