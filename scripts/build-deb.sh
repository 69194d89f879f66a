#!/usr/bin/env bash
# Builds the s3mounts Debian package from a staged tree:
#   scripts/build-deb.sh                 -> dist/s3mounts_<version>_amd64.deb
# Environment:
#   DEB_VERSION   package version (default 0.1.0+git<commits>.<sha>)
#   S3MOUNTS_BIN  take s3mountd/s3mountctl from this directory instead of
#                 building them (e.g. ./bin after `make build`)
#   OUT_DIR       where the .deb goes (default dist/)
# Prints the path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ -z "${DEB_VERSION:-}" ]; then
  if n=$(git rev-list --count HEAD 2>/dev/null) && sha=$(git rev-parse --short HEAD 2>/dev/null); then
    DEB_VERSION="0.1.0+git$n.$sha"
  else
    DEB_VERSION="0.1.0"
  fi
fi
case "$DEB_VERSION" in
  [0-9]*) ;;
  *) echo "build-deb: DEB_VERSION must start with a digit (Debian policy), got '$DEB_VERSION'" >&2; exit 2 ;;
esac
OUT_DIR=${OUT_DIR:-$ROOT/dist}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/s3mounts-deb.XXXXXX")
chmod 0755 "$STAGE"
trap 'rm -rf "$STAGE"' EXIT
umask 022

install -d "$STAGE/DEBIAN" "$STAGE/usr/bin" "$STAGE/lib/systemd/system" \
  "$STAGE/etc/s3mounts/connectors.d" "$STAGE/usr/share/doc/s3mounts/examples/connectors.d"

# Binaries. cgo stays on (as in `make build`) so that group lookups for the
# socket's peer go through NSS (LDAP/sssd users on a JupyterHub node).
if [ -n "${S3MOUNTS_BIN:-}" ]; then
  install -m 0755 "$S3MOUNTS_BIN/s3mountd" "$S3MOUNTS_BIN/s3mountctl" "$STAGE/usr/bin/"
else
  # Hardened as Debian builds C: PIE, full RELRO, bind now.
  CGO_LDFLAGS="${CGO_LDFLAGS:-} -Wl,-z,relro,-z,now" go build -trimpath -buildmode=pie \
    -ldflags "-s -w -linkmode=external -X github.com/s3mounts/s3mounts/agent.Version=$DEB_VERSION -X github.com/s3mounts/s3mounts/agent/cli.Version=$DEB_VERSION" \
    -o "$STAGE/usr/bin/" ./agent/cmd/s3mountd ./agent/cmd/s3mountctl
  chmod 0755 "$STAGE/usr/bin/s3mountd" "$STAGE/usr/bin/s3mountctl"
fi

if command -v strip >/dev/null 2>&1; then
  strip --strip-unneeded "$STAGE/usr/bin/s3mountd" "$STAGE/usr/bin/s3mountctl"
fi

install -m 0644 packaging/systemd/s3mountd.service packaging/systemd/s3mountd.socket "$STAGE/lib/systemd/system/"

# /etc/s3mounts/agent.toml (a conffile): the example with every setting
# commented out, so the package's defaults apply until the administrator
# uncomments a line.
{
  echo "# Installed by the s3mounts package. Every setting below is commented out"
  echo "# and shows its default; uncomment and edit to change it, then run"
  echo "# 'systemctl reload s3mountd'. See /usr/share/doc/s3mounts/examples/."
  echo "#"
  sed -E 's/^([^#[:space:]])/# \1/' packaging/examples/agent.toml
} > "$STAGE/etc/s3mounts/agent.toml"
chmod 0644 "$STAGE/etc/s3mounts/agent.toml"

install -m 0644 packaging/examples/agent.toml "$STAGE/usr/share/doc/s3mounts/examples/"
install -m 0644 packaging/examples/connectors.d/*.toml "$STAGE/usr/share/doc/s3mounts/examples/connectors.d/"
install -m 0644 packaging/deb/copyright "$STAGE/usr/share/doc/s3mounts/copyright"
for d in OPERATIONS.md PACKAGING.md; do
  [ -f "docs/$d" ] && install -m 0644 "docs/$d" "$STAGE/usr/share/doc/s3mounts/"
done
printf 's3mounts (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n -- s3mounts maintainers <s3mounts@users.noreply.github.com>  %s\n' \
  "$DEB_VERSION" "$(git rev-parse HEAD 2>/dev/null || echo source)" "$(date -R -u)" \
  | gzip -9n > "$STAGE/usr/share/doc/s3mounts/changelog.gz"
chmod 0644 "$STAGE/usr/share/doc/s3mounts/changelog.gz"

# Maintainer scripts and control files.
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$STAGE/DEBIAN/"
echo /etc/s3mounts/agent.toml > "$STAGE/DEBIAN/conffiles"
chmod 0644 "$STAGE/DEBIAN/conffiles"

# The newest glibc symbol version the binaries need.
glibc=2.34
if command -v objdump >/dev/null 2>&1; then
  g=$(objdump -T "$STAGE/usr/bin/s3mountd" "$STAGE/usr/bin/s3mountctl" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -1 || true)
  [ -n "$g" ] && glibc=$g
fi
size=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$DEB_VERSION/" -e "s/@SIZE@/$size/" -e "s/@GLIBC@/$glibc/" packaging/deb/control.in > "$STAGE/DEBIAN/control"
chmod 0644 "$STAGE/DEBIAN/control"
(cd "$STAGE" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$STAGE/DEBIAN/md5sums"
chmod 0644 "$STAGE/DEBIAN/md5sums"

deb="$OUT_DIR/s3mounts_${DEB_VERSION}_amd64.deb"
dpkg-deb --build --root-owner-group "$STAGE" "$deb" >/dev/null
echo "$deb"
