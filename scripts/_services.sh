#!/usr/bin/env bash
# Starts the machine's services when they are down (PostgreSQL, MariaDB, Redis, RabbitMQ) and
# installs Debian's Chromium for the page tests and the MariaDB client headers (mysqlclient). Every step is best effort: tests that need a missing
# service skip with a reason, or fail under CI=true.

pg_available() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
mariadb_available() { (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null; }
redis_available() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }
rabbit_available() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

wait_for() {  # wait_for CHECK SECONDS
  local i
  for ((i = 0; i < $2 * 4; i++)); do "$1" && return 0; sleep 0.25; done
  return 1
}

start_services() {
  if ! pg_available && command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "==> starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    wait_for pg_available 30 || echo "warning: PostgreSQL did not come up" >&2
  fi
  if ! mariadb_available && [ -x /usr/sbin/mariadbd ]; then
    echo "==> starting MariaDB"
    service mariadb start >/dev/null 2>&1 \
      || start-stop-daemon --start --oknodo --background --chuid mysql \
        --exec /usr/sbin/mariadbd || true
    wait_for mariadb_available 30 || echo "warning: MariaDB did not come up" >&2
  fi
  if ! { pkg-config --exists libmariadb || pkg-config --exists mysqlclient; } 2>/dev/null \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing Debian's libmariadb-dev (headers to build mysqlclient)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      libmariadb-dev pkg-config >/dev/null) || echo "warning: could not install libmariadb-dev" >&2
  fi
  if ! redis_available && command -v redis-server >/dev/null 2>&1; then
    echo "==> starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    wait_for redis_available 15 || echo "warning: Redis did not come up" >&2
  fi
  if ! rabbit_available && command -v rabbitmq-server >/dev/null 2>&1; then
    echo "==> starting RabbitMQ"
    rabbitmq-server -detached || true
    wait_for rabbit_available 60 || echo "warning: RabbitMQ did not come up" >&2
  fi
  if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1 \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing Debian's chromium and chromium-driver for the page tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      chromium chromium-driver >/dev/null) || echo "warning: could not install chromium" >&2
  fi
}
