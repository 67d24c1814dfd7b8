"""Tasks for cluster building blocks (keepalived VIP, ...): none yet."""
