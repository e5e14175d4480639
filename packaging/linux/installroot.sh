#!/usr/bin/env bash
# The install test's root (packaging/linux/install_test.go runs it). Run it in a mount namespace
# of its own, so every mount it makes goes away with its last process:
#   unshare --mount --propagation private installroot.sh LOWER DEB ARCHIVES WORK COMMAND...
# LOWER is the cached Debian root from debroot.sh: it is the overlay's lower layer and is never
# written. The overlay's upper layer is WORK/upper, so each run starts from the clean root. DEB is
# installed with `apt-get install ./file.deb`, which takes its Depends from the root's package
# lists (made by debroot.sh; refreshed with apt-get update only when a listed version has gone from
# the mirror). ARCHIVES is a directory kept between runs for the downloaded .debs, so a warm run
# downloads nothing. Then this prints "installed" and waits for one line on stdin; when it comes,
# COMMAND (e.g. env -i DISPLAY=:5 ... /usr/bin/dazaar-vision -v) replaces this script inside the
# root (same process: signals reach the app), with the host's X socket directory bound in, so
# DISPLAY names the host's Xvfb.
set -euo pipefail
[ $# -ge 5 ] || { echo "usage: installroot.sh LOWER DEB ARCHIVES WORK COMMAND..." >&2; exit 2; }
lower=$1 deb=$2 archives=$3 work=$4
shift 4
r=$work/root
mkdir -p "$work/upper" "$work/work" "$r" "$archives/partial"
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$work/upper,workdir=$work/work" "$r"
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount --rbind /dev "$r/dev"
mkdir -p "$r/tmp/.X11-unix" "$r/var/cache/apt/archives"
mount --bind /tmp/.X11-unix "$r/tmp/.X11-unix"
mount --bind "$archives" "$r/var/cache/apt/archives"
cp /etc/resolv.conf "$r/etc/resolv.conf"
cp "$deb" "$r/tmp/"
name=/tmp/$(basename "$deb")

in_root() { chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
# The archives directory is shared between runs and owned by root: no _apt sandbox.
apt_opts=(-o APT::Sandbox::User=root -o Dpkg::Use-Pty=0 -o APT::Keep-Downloaded-Packages=true)
if ! in_root apt-get install -y -q "${apt_opts[@]}" "$name" >"$work/apt.log" 2>&1; then
  # The cached lists may name versions the mirror no longer has: refresh them, try once more.
  echo "apt-get install failed; refreshing the package lists" >&2
  tail -5 "$work/apt.log" >&2
  in_root apt-get update -q "${apt_opts[@]}" >>"$work/apt.log" 2>&1
  in_root apt-get install -y -q "${apt_opts[@]}" "$name" >>"$work/apt.log" 2>&1 ||
    { cat "$work/apt.log" >&2; echo "apt-get install $name failed in the clean root" >&2; exit 1; }
fi
# What was installed (the Depends apt pulled in), for the test's log.
in_root dpkg-query -W -f='${Package}\n' | wc -l | sed 's/^/packages in the root: /'
grep -c '^Get:[0-9]* http' "$work/apt.log" | sed 's/^/downloaded from the mirror: /' || true
echo installed
read -r _
exec chroot "$r" "$@"
