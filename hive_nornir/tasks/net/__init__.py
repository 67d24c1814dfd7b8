"""Tasks for networking: the firewall contract and iptables, internal NIC, HTTP proxy forward."""
