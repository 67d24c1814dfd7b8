"""Tasks for monitoring: zabbix agent and server."""
