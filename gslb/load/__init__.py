"""Loading files into data: everything that turns what an operator wrote into what the
pure core (`gslb.dns`, `gslb.steering`) serves, and reports every problem on the way as
`file:line: message`, all of them at once rather than stopping at the first.

Zone files (zoneparse: the master-file parser; zonefile: zones and their validation),
steering YAML (steering: records, pools, rules, the policy chain, conflicts with the
zone's data) and its `checks:` section (checks), GeoIP databases (geoip), and what a
reload settles on when some of it is broken (settle: last good versions, SERVFAIL
stand-ins). This layer reads files; the core never imports it.
"""
