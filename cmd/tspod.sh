#!/bin/sh
# bin/tspod: starts tspod's bundled Node code (bin/tspod-js/main.js).
# Node reads the whole NODE_EXTRA_CA_CERTS file at every start, even for commands
# that open no TLS connection (tens to hundreds of ms); tspod moves it aside and
# adds those certificates itself when it talks to a registry (store/sources/http.ts).
if [ -n "$NODE_EXTRA_CA_CERTS" ]; then
  TSPOD_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS
  export TSPOD_EXTRA_CA_CERTS
  unset NODE_EXTRA_CA_CERTS
fi
self=$(readlink -f "$0")
exec node "${self%/*}/tspod-js/main.js" "$@"
