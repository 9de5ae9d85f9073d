#!/bin/sh
# /usr/bin/cardbridge: the CLI on the package's own Node.js runtime (Debian 12's nodejs is 18).
exec /usr/lib/cardbridge/node /usr/lib/cardbridge/bin/cardbridge.js "$@"
