"""The page framework: Jinja2 templates with the NHS.UK frontend, page errors, security headers."""
