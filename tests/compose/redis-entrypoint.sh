#!/bin/sh
# As the redis image does: run as the redis user, and without protected mode, since the
# server is reached from the other containers of the stack (never published on the host).
set -eu
if [ "$1" = "redis-server" ]; then
    shift
    chown -R redis:redis /data
    exec runuser -u redis -- redis-server --protected-mode no "$@"
fi
exec "$@"
