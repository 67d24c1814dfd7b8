"""The phases as runbooks, one module per phase (setup_hosts), plus example scripts and notebooks."""
