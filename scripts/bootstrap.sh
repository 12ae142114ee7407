#!/bin/sh
# Installs what smoothcast needs and is missing, then exits 0. Idempotent and quiet when all is there.
#   sh scripts/bootstrap.sh            npm dependencies (which bring Node 24) + ffmpeg
#   sh scripts/bootstrap.sh --test     the same + what the tests use as reference clients: chromium (driven through
#                                      playwright-core), GStreamer with its HLS/DASH/Smooth demuxers, nginx, openssl,
#                                      and the servers tests start throwaway copies of: PostgreSQL, OpenStack Swift
#                                      (an S3 API through s3api) with memcached
#   sh scripts/bootstrap.sh --bench    the same + nginx, wrk and curl (benchmark references and clients)
# Only the npm registry and Debian's packages are used.
set -eu
cd "$(dirname "$0")/.."

want_bench=0
want_browser=0
for a in "$@"; do
  case "$a" in
    --bench) want_bench=1 ;;
    --test) want_browser=1 ;;
    *) echo "bootstrap: unknown option $a" >&2; exit 2 ;;
  esac
done

# 1. npm dependencies, Node 24 among them (the registry's `node` package). Reinstall when the lockfile changed.
stamp=node_modules/.smoothcast-lock
if [ ! -x node_modules/.bin/node ] || [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "smoothcast: installing npm dependencies (Node 24 included)..." >&2
  # `npm ci` installs exactly what package-lock.json records (every platform's optional binaries are locked, so
  # the same file works on Linux, macOS and Windows) and fails rather than drift from it.
  npm ci --no-audit --no-fund --loglevel=error >&2
  cp package-lock.json "$stamp"
fi

# 2. The web app (web/ → dist/web), rebuilt only when its sources changed.
./node_modules/.bin/node scripts/build-web.ts

# 3. Debian packages.
apt_pkgs=""
svc_pkgs=""
have_any() {
  for f in "$@"; do [ -x "$f" ] && return 0; done
  return 1
}
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || apt_pkgs="$apt_pkgs ffmpeg"
if [ $want_browser -eq 1 ]; then
  command -v chromium >/dev/null 2>&1 || apt_pkgs="$apt_pkgs chromium"
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_pkgs="$apt_pkgs nginx-light"
  command -v gst-launch-1.0 >/dev/null 2>&1 || apt_pkgs="$apt_pkgs gstreamer1.0-tools"
  gst_has() { command -v gst-inspect-1.0 >/dev/null 2>&1 && gst-inspect-1.0 "$1" >/dev/null 2>&1; }
  gst_has mssdemux || apt_pkgs="$apt_pkgs gstreamer1.0-plugins-bad"
  gst_has qtdemux || apt_pkgs="$apt_pkgs gstreamer1.0-plugins-good"
  gst_has avdec_h264 || apt_pkgs="$apt_pkgs gstreamer1.0-libav"
  # The decryption oracle of the AES-128 tests (openssl enc -d -aes-128-cbc).
  command -v openssl >/dev/null 2>&1 || apt_pkgs="$apt_pkgs openssl"
  # Servers the tests start on their own (temp dirs, loopback ports): the packages' own services stay off.
  have_any /usr/lib/postgresql/*/bin/initdb || svc_pkgs="$svc_pkgs postgresql"
  for s in proxy account container object; do
    [ -x "/usr/bin/swift-$s-server" ] || svc_pkgs="$svc_pkgs swift-$s"
  done
  command -v memcached >/dev/null 2>&1 || [ -x /usr/bin/memcached ] || svc_pkgs="$svc_pkgs memcached"
fi
if [ $want_bench -eq 1 ]; then
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_pkgs="$apt_pkgs nginx-light"
  command -v wrk >/dev/null 2>&1 || apt_pkgs="$apt_pkgs wrk"
  command -v curl >/dev/null 2>&1 || apt_pkgs="$apt_pkgs curl"
fi
apt_pkgs="$apt_pkgs$svc_pkgs"
if [ -n "$apt_pkgs" ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "smoothcast: installing Debian packages:$apt_pkgs ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    # invoke-rc.d asks policy-rc.d before a package script starts a service; 101 means "not allowed" (Debian
    # policy-rc.d interface, /usr/share/doc/init-system-helpers/README.policy-rc.d). Ours exists only while apt runs.
    if [ -n "$svc_pkgs" ] && [ ! -e /usr/sbin/policy-rc.d ]; then
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
      trap 'rm -f /usr/sbin/policy-rc.d; exit 130' INT TERM
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
    fi
    apt-get update -qq >&2
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $apt_pkgs >/dev/null
  else
    echo "smoothcast: missing programs:$apt_pkgs" >&2
    echo "  install them with your package manager, e.g.: sudo apt-get install$apt_pkgs" >&2
    exit 1
  fi
fi
