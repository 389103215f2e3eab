#!/bin/sh
# make install: the program and man pages, the shell completions (bash
# completes commands, options and the store's images; zsh's and fish's
# are syntax-checked where those shells are installed), and obuild's
# AppArmor profile (it lets obuild create user namespaces where Ubuntu's
# AppArmor restricts them) only where AppArmor 4's abi exists.
. "$(dirname "$0")/lib.sh"

[ -f "$OBUILD_SRCDIR/Makefile" ] || { skip "no configured build tree at $OBUILD_SRCDIR"; done_testing; }
d=$TESTDIR/with
mkdir -p "$d/etc/apparmor.d/abi" && : >"$d/etc/apparmor.d/abi/4.0"
check "make install DESTDIR (AppArmor 4 present)" make -s -C "$OBUILD_SRCDIR" install DESTDIR="$d"
bindir=$(sed -n 's/^bindir = //p' "$OBUILD_SRCDIR/Makefile" | sed "s|\${exec_prefix}|$(sed -n 's/^exec_prefix = //p' "$OBUILD_SRCDIR/Makefile")|; s|\${prefix}|$(sed -n 's/^prefix = //p' "$OBUILD_SRCDIR/Makefile")|")
check "... the program is installed" test -x "$d$bindir/obuild"
check "... and obuild(1)" sh -c "ls '$d'/*/*/share/man/man1/obuild.1 '$d'/*/share/man/man1/obuild.1 2>/dev/null | grep -q ."
check "... and obuild-run(1)" sh -c "ls '$d'/*/*/share/man/man1/obuild-run.1 '$d'/*/share/man/man1/obuild-run.1 2>/dev/null | grep -q ."
prefix=$(sed -n 's/^prefix = //p' "$OBUILD_SRCDIR/Makefile")
bc=$d$prefix/share/bash-completion/completions/obuild
check "... the bash completion" test -f "$bc"
check "... the zsh completion" test -f "$d$prefix/share/zsh/vendor-completions/_obuild"
check "... the fish completion" test -f "$d$prefix/share/fish/vendor_completions.d/obuild.fish"
# bash: what <TAB> offers, by calling the function as bash would
import_busybox root
# complete LINE: the candidates bash would offer at the end of LINE
complete_bash() {
  OBUILD_ROOT=$(store root) PATH="$d$bindir:$PATH" bash -c '
    . "$1"
    COMP_LINE=$2; COMP_POINT=${#COMP_LINE}
    read -ra COMP_WORDS <<<"$COMP_LINE"
    [[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    _obuild
    printf "%s\n" "${COMPREPLY[@]}"' complete-test "$bc" "$1"
}
check_eq "bash: obuild ru<TAB> -> run" "$(complete_bash "obuild ru")" run
check_eq "bash: obuild run bu<TAB> -> the store's image" "$(complete_bash "obuild run bu")" busybox:latest
check_eq "bash: obuild run -e K=V bu<TAB> -> the image" "$(complete_bash "obuild run -e K=V bu")" busybox:latest
check_eq "bash: obuild run --netw<TAB> -> --network" "$(complete_bash "obuild run --netw")" --network
check_eq "bash: obuild run --network <TAB> -> host none" "$(complete_bash "obuild run --network " | tr '\n' ' ')" "host none "
check_eq "bash: obuild rmi <TAB> -> the image" "$(complete_bash "obuild rmi ")" busybox:latest
check_eq "bash: obuild images -<TAB>" "$(complete_bash "obuild images -" | tr '\n' ' ')" "-q --quiet --help "
if command -v zsh >/dev/null; then
  check "zsh: _obuild parses" zsh -n "$d$prefix/share/zsh/vendor-completions/_obuild"
else
  skip "zsh: not installed (scripts/deps.sh --test installs it)"
fi
if command -v fish >/dev/null; then
  check "fish: obuild.fish parses" fish --no-execute "$d$prefix/share/fish/vendor_completions.d/obuild.fish"
  check_eq "fish: obuild run bu<TAB> -> the image" \
    "$(OBUILD_ROOT=$(store root) PATH="$d$bindir:$PATH" fish -c "source '$d$prefix/share/fish/vendor_completions.d/obuild.fish'; complete -C 'obuild run bu'" | cut -f1)" \
    busybox:latest
else
  skip "fish: not installed (scripts/deps.sh --test installs it)"
fi
check "... the AppArmor profile is installed" test -f "$d/etc/apparmor.d/obuild"
check_eq "... for the installed program, allowing user namespaces" \
  "$(grep -E "^profile obuild |^  userns,$" "$d/etc/apparmor.d/obuild" | tr '\n' '|')" \
  "profile obuild $bindir/obuild flags=(unconfined) {|  userns,|"
check "make uninstall removes it" make -s -C "$OBUILD_SRCDIR" uninstall DESTDIR="$d"
check "... gone" test ! -e "$d/etc/apparmor.d/obuild"
check "... and the completions" sh -c "! find '$d' -name obuild.fish -o -name _obuild -o -path '*/completions/obuild' | grep -q ."
d=$TESTDIR/without
mkdir -p "$d"
check "make install DESTDIR (no AppArmor 4)" make -s -C "$OBUILD_SRCDIR" install DESTDIR="$d"
check "... no profile written" test ! -e "$d/etc/apparmor.d/obuild"
done_testing
