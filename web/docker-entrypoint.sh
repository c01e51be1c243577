#!/bin/sh
# Entry point of the web image: renders nginx.conf into /tmp (the root filesystem is read-only) and
# runs nginx in the foreground.
#
# API_UPSTREAM  host:port of the API Service that /api is proxied to, e.g. `demo-api:8080` or
#               `demo-api.team-a.svc.cluster.local:8080`. A name without a dot gets the first
#               `search` domain of /etc/resolv.conf (nginx's resolver does not search). Unset: /api
#               answers 503 and the static app is still served.
set -eu

template=/etc/nginx/beermeetup/nginx.conf.template
run=/tmp/nginx
upstream=${API_UPSTREAM:-}

mkdir -p "$run"

resolvers=$(awk '$1 == "nameserver" { printf "%s%s", sep, ($2 ~ /:/ ? "[" $2 "]" : $2); sep = " " }' /etc/resolv.conf 2>/dev/null || true)

if [ -n "$upstream" ]; then
  case $upstream in
    *:*) host=${upstream%:*}; port=${upstream##*:} ;;
    *) echo "web: API_UPSTREAM must be host:port, got '$upstream'" >&2; exit 64 ;;
  esac
  case $host in
    *.* | \[*) ;;
    *)
      domain=$(awk '$1 == "search" { print $2; exit }' /etc/resolv.conf 2>/dev/null || true)
      if [ -n "$domain" ]; then host="$host.$domain"; fi
      ;;
  esac
  upstream="$host:$port"
  # An address needs no resolver; a name does.
  if [ -z "$resolvers" ] && ! printf '%s' "$host" | grep -Eq '^([0-9.]+|\[.*\])$'; then
    echo "web: API_UPSTREAM=$upstream is a name but /etc/resolv.conf has no nameserver" >&2
    exit 69
  fi
  echo "web: proxying /api to $upstream (resolver: ${resolvers:-none})" >&2
else
  echo "web: API_UPSTREAM is not set: /api answers 503" >&2
fi

if [ -n "$resolvers" ]; then
  resolver_line="resolver $resolvers valid=10s;"
else
  resolver_line="# no nameserver in /etc/resolv.conf"
fi

sed -e "s|__RESOLVER__|$resolver_line|" -e "s|__API_UPSTREAM__|$upstream|" "$template" >"$run/nginx.conf"

exec nginx -e stderr -c "$run/nginx.conf" "$@"
