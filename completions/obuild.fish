# fish completion for obuild(1): commands, each command's options, and the
# images of the store (from `obuild images --quiet`, with the same --root).

set -l obuild_commands build import images pull push login prune inspect history tag rmi logout save load info run

function __obuild_images
    set -l tokens (commandline -opc)
    set -l root
    for i in (seq (count $tokens))
        switch $tokens[$i]
            case --root
                set root --root $tokens[(math $i + 1)]
            case '--root=*'
                set root $tokens[$i]
        end
    end
    obuild $root images --quiet 2>/dev/null
end

# true when the command line has one of the commands argv names and, after
# it, no positional argument yet (`obuild run IMAGE` takes one image); the
# values of options that take one are skipped
function __obuild_first_arg_of
    set -l tokens (commandline -opc)
    set -l valopts -e --env --env-file -v --volume -w --workdir -u --user --entrypoint --network --name \
        --userns --tls-verify --cert-dir --authfile --digestfile
    set -l seen 0
    set -l skip 0
    for t in $tokens[2..-1]
        if test $skip -eq 1
            set skip 0
        else if test $seen -eq 1
            if contains -- $t $valopts
                set skip 1
            else if not string match -q -- '-*' $t
                return 1
            end
        else if contains -- $t $argv
            set seen 1
        end
    end
    test $seen -eq 1
end

complete -c obuild -f
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -l root -r -a '(__fish_complete_directories)' -d 'store directory'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -l help -d help
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -l version -d version
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a build -d 'build an image from a Dockerfile'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a import -d 'make a base image from a tarball'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a images -d 'list the images in the store'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a pull -d 'pull an image into the store'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a push -d 'push an image to a registry'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a login -d 'store credentials for a registry'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a prune -d 'remove what no tag needs'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a inspect -d 'show an image as JSON'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a history -d 'show the history of an image'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a tag -d 'add tags to an image'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a rmi -d 'remove tags'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a logout -d 'remove stored credentials'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a save -d 'write images to an archive'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a load -d 'read images from an archive'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a info -d 'what this machine allows'
complete -c obuild -n "not __fish_seen_subcommand_from $obuild_commands" -a run -d 'run a command from an image'

# build
set -l c "__fish_seen_subcommand_from build"
complete -c obuild -n $c -s t -l tag -r -d 'name:tag'
complete -c obuild -n $c -s f -l file -r -F -d Dockerfile
complete -c obuild -n $c -s o -l output -r -a '(__fish_complete_directories)' -d 'OCI layout'
complete -c obuild -n $c -s q -l quiet -d 'print only the digest'
complete -c obuild -n $c -l build-arg -r -d K=V
complete -c obuild -n $c -l build-arg-file -r -F
complete -c obuild -n $c -l label -r -d K=V
complete -c obuild -n $c -l iidfile -r -F
complete -c obuild -n $c -l target -r -d stage
complete -c obuild -n $c -l userns -r -a 'auto subuid single none'
complete -c obuild -n $c -l source-date-epoch -r
complete -c obuild -n $c -l timestamp -r
complete -c obuild -n $c -l compression -r -a 'gzip zstd none'
complete -c obuild -n $c -l compression-level -r
complete -c obuild -n $c -l network -r -a 'host none'
complete -c obuild -n $c -l snapshotter -r -a 'auto overlay copy'
complete -c obuild -n $c -l pull -d 'missing, always or never'
complete -c obuild -n $c -l platform -r
complete -c obuild -n $c -l tls-verify -r -a 'true false'
complete -c obuild -n $c -l cert-dir -r -a '(__fish_complete_directories)'
complete -c obuild -n $c -l authfile -r -F
complete -c obuild -n $c -l no-cache
complete -c obuild -n $c -l no-cache-filter -r
complete -c obuild -n $c -l cache-ttl -r
complete -c obuild -n $c -l cache-from -r
complete -c obuild -n $c -l cache-to -r
complete -c obuild -n $c -l annotation -r
complete -c obuild -n $c -l env -r
complete -c obuild -n $c -l squash
complete -c obuild -n $c -l secret -r
complete -c obuild -n $c -l ssh -r
complete -c obuild -n $c -l push
complete -c obuild -n $c -l isolation -r -a 'auto container'
complete -c obuild -n $c -l help
complete -c obuild -n $c -a '(__fish_complete_directories)' -d context

# import, images, pull, push, login, prune
set c "__fish_seen_subcommand_from import"
complete -c obuild -n $c -l source-date-epoch -r
complete -c obuild -n $c -l timestamp -r
complete -c obuild -n $c -s q -l quiet
complete -c obuild -n $c -l help
complete -c obuild -n $c -F
set c "__fish_seen_subcommand_from images"
complete -c obuild -n $c -s q -l quiet -d 'only the tags'
complete -c obuild -n $c -l help
set c "__fish_seen_subcommand_from pull push login"
complete -c obuild -n $c -l tls-verify -r -a 'true false'
complete -c obuild -n $c -l cert-dir -r -a '(__fish_complete_directories)'
complete -c obuild -n $c -l authfile -r -F
complete -c obuild -n $c -l help
complete -c obuild -n "__fish_seen_subcommand_from pull push" -s q -l quiet
complete -c obuild -n "__fish_seen_subcommand_from pull" -l platform -r
complete -c obuild -n "__fish_seen_subcommand_from push" -l digestfile -r -F
complete -c obuild -n "__fish_seen_subcommand_from push; and __obuild_first_arg_of push" -a '(__obuild_images)' -d image
set c "__fish_seen_subcommand_from login"
complete -c obuild -n $c -s u -l username -r
complete -c obuild -n $c -s p -l password -r
complete -c obuild -n $c -l password-stdin
complete -c obuild -n $c -l no-check
set c "__fish_seen_subcommand_from prune"
complete -c obuild -n $c -s a -l all -d 'also the cache'
complete -c obuild -n $c -s n -l dry-run
complete -c obuild -n $c -l help

# inspect, history, tag, rmi, logout, save, load, info
set c "__fish_seen_subcommand_from inspect"
complete -c obuild -n $c -l config
complete -c obuild -n $c -l manifest
complete -c obuild -n $c -l raw
set c "__fish_seen_subcommand_from history"
complete -c obuild -n $c -l no-trunc
complete -c obuild -n $c -s q -l quiet
complete -c obuild -n "__fish_seen_subcommand_from inspect history tag rmi save logout load info" -l help
complete -c obuild -n "__fish_seen_subcommand_from inspect history; and __obuild_first_arg_of inspect history" -a '(__obuild_images)' -d image
complete -c obuild -n "__fish_seen_subcommand_from tag rmi save" -a '(__obuild_images)' -d image
complete -c obuild -n "__fish_seen_subcommand_from logout" -l authfile -r -F
set c "__fish_seen_subcommand_from save"
complete -c obuild -n $c -s o -l output -r -F
complete -c obuild -n $c -l format -r -a 'oci-archive docker-archive'
complete -c obuild -n "__fish_seen_subcommand_from load" -s i -l input -r -F
complete -c obuild -n "__fish_seen_subcommand_from info" -l json

# run: options until IMAGE, then the command's own words
set c "__fish_seen_subcommand_from run; and __obuild_first_arg_of run"
complete -c obuild -n $c -l rm -d 'accepted: a container is never kept'
complete -c obuild -n $c -s i -l interactive -d 'pass standard input'
complete -c obuild -n $c -s t -l tty -d 'allocate a pseudo-terminal'
complete -c obuild -n $c -s e -l env -r -d K=V
complete -c obuild -n $c -l env-file -r -F
complete -c obuild -n $c -s v -l volume -r -F -d 'SRC:DST[:ro]'
complete -c obuild -n $c -s w -l workdir -r
complete -c obuild -n $c -s u -l user -r -d 'USER[:GROUP]'
complete -c obuild -n $c -l entrypoint -r
complete -c obuild -n $c -l network -r -a 'host none'
complete -c obuild -n $c -l name -r -d hostname
complete -c obuild -n $c -l userns -r -a 'auto subuid single none'
complete -c obuild -n $c -l help
complete -c obuild -n $c -a '(__obuild_images)' -d image
