"""Tasks by domain: host, ssh, net, storage, pki, docker, logs, monitoring, repository, cluster, aws, chef."""
