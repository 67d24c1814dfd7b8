"""Jinja2 templates shipped with the package, by domain; a project's own templates/ is searched first."""
