"""The Open311 GeoReport v2 door: citizens' apps report problems and follow them to closure.

`/open311/v2/` serves the public specification (wiki.open311.org/GeoReport_v2) in XML and JSON:
the public categories are the services, a posted request becomes a `reported` case with source
`open311`, and the case's progress is published back as open/closed with notes. Admins issue and
revoke the API keys (`/api/v1/open311/keys`).
"""
