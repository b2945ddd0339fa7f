#!/usr/bin/env bash
# Install PHP (CLI) with the phpredis extension from Debian's packages, for the PHP publisher
# (dualsync/producers/php) and its contract test (tests/test_php_publisher.py).
# Idempotent: does nothing when `php -m` already lists redis. Needs root (or sudo) and apt.
set -euo pipefail

if command -v php >/dev/null 2>&1 && php -m 2>/dev/null | grep -qx redis; then
    echo "setup-php: $(php -r 'echo "PHP ", PHP_VERSION;') with the redis extension is already installed; nothing to do"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-php: apt-get not found; install php-cli and php-redis (phpredis) by hand" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "setup-php: must run as root (or with sudo available) to apt-get install" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "setup-php: apt-get update"
$SUDO apt-get update -qq
echo "setup-php: apt-get install -y php-cli php-redis"
$SUDO apt-get install -y -qq --no-install-recommends php-cli php-redis >/dev/null

if ! php -m 2>/dev/null | grep -qx redis; then
    echo "setup-php: php-redis installed but 'php -m' does not list redis" >&2
    exit 1
fi
echo "setup-php: installed $(php -r 'echo "PHP ", PHP_VERSION, ", phpredis ", phpversion("redis");')"
