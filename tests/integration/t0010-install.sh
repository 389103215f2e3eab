#!/bin/sh
# make install: the program and man pages, and obuild's AppArmor profile
# (it lets obuild create user namespaces where Ubuntu's AppArmor restricts
# them) only where AppArmor 4's abi exists.
. "$(dirname "$0")/lib.sh"

[ -f "$OBUILD_SRCDIR/Makefile" ] || { skip "no configured build tree at $OBUILD_SRCDIR"; done_testing; }
d=$TESTDIR/with
mkdir -p "$d/etc/apparmor.d/abi" && : >"$d/etc/apparmor.d/abi/4.0"
check "make install DESTDIR (AppArmor 4 present)" make -s -C "$OBUILD_SRCDIR" install DESTDIR="$d"
bindir=$(sed -n 's/^bindir = //p' "$OBUILD_SRCDIR/Makefile" | sed "s|\${exec_prefix}|$(sed -n 's/^exec_prefix = //p' "$OBUILD_SRCDIR/Makefile")|; s|\${prefix}|$(sed -n 's/^prefix = //p' "$OBUILD_SRCDIR/Makefile")|")
check "... the program is installed" test -x "$d$bindir/obuild"
check "... and obuild(1)" sh -c "ls '$d'/*/*/share/man/man1/obuild.1 '$d'/*/share/man/man1/obuild.1 2>/dev/null | grep -q ."
check "... the AppArmor profile is installed" test -f "$d/etc/apparmor.d/obuild"
check_eq "... for the installed program, allowing user namespaces" \
  "$(grep -E "^profile obuild |^  userns,$" "$d/etc/apparmor.d/obuild" | tr '\n' '|')" \
  "profile obuild $bindir/obuild flags=(unconfined) {|  userns,|"
check "make uninstall removes it" make -s -C "$OBUILD_SRCDIR" uninstall DESTDIR="$d"
check "... gone" test ! -e "$d/etc/apparmor.d/obuild"
d=$TESTDIR/without
mkdir -p "$d"
check "make install DESTDIR (no AppArmor 4)" make -s -C "$OBUILD_SRCDIR" install DESTDIR="$d"
check "... no profile written" test ! -e "$d/etc/apparmor.d/obuild"
done_testing
