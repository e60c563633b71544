# SPDX-License-Identifier: BSD-2-Clause
# fish completion for nshm-put (vendor_completions.d/nshm-put.fish).

# Candidate endpoints: the POSIX shm objects in /dev/shm (names only), pci,
# and pci:BDF for each ivshmem device (vendor 0x1af4, device 0x1110) under
# $NSHM_SYSFS_ROOT/bus/pci/devices (default /sys). A word with a '/' is a
# path: files are offered instead.
function __nshm_endpoints
    set -l tok (commandline -ct)
    string match -q -- '--*=*' $tok; and set tok (string replace -r -- '^[^=]*=' '' $tok)
    if string match -q -- '*/*' $tok
        __fish_complete_path $tok
        return 0
    end
    for f in /dev/shm/*
        test -f $f; and printf '%s\tshm object\n' (path basename -- $f)
    end
    printf '%s\t%s\n' pci 'the one ivshmem device'
    set -l root /sys
    set -q NSHM_SYSFS_ROOT; and test -n "$NSHM_SYSFS_ROOT"; and set root $NSHM_SYSFS_ROOT
    for d in $root/bus/pci/devices/*
        test -r $d/vendor -a -r $d/device; or continue
        set -l v (string lower -- (cat $d/vendor 2>/dev/null))
        set -l id (string lower -- (cat $d/device 2>/dev/null))
        if test "$v" = 0x1af4 -a "$id" = 0x1110
            printf 'pci:%s\tivshmem device\n' (path basename -- $d)
        end
    end
    return 0
end

# The operands before the word being completed: FILE... TARGET.
function __nshm_put_operands
    set -l argv (commandline -opc)[2..-1]
    argparse -i 'n/name=' 't/to=' 'T/target=+' 'buffer=' 'slots=' 'chunk=' 'timeout=' 'peer-timeout=' 'map=' 'digest=' \
        'q/quiet' 'json' 'h/help' 'V/version' -- $argv 2>/dev/null
    or return 0
    # With -T every operand is a FILE.
    set -q _flag_target; and return 0
    count $argv
end

# After the first operand a word may be a file or the TARGET.
function __nshm_put_target
    set -l n (__nshm_put_operands)
    test -n "$n"; and test $n -ge 1
end

complete -c nshm-put -s n -l name -x -d 'Name to offer for standard input'
complete -c nshm-put -s t -l to -x -d 'Place the files under SUBDIR of the receiver''s directory'
complete -c nshm-put -s T -l target -x -a '(__nshm_endpoints)' -d 'Send to TARGET (repeat it: several at once)'
complete -c nshm-put -l buffer -x -d 'Several targets: how far one may fall behind (e.g. 32M)'
complete -c nshm-put -l slots -x -d 'Number of slots in the region'
complete -c nshm-put -l chunk -x -d 'Bytes per slot, e.g. 1M'
complete -c nshm-put -l timeout -x -d 'Give up if no receiver appears (seconds)'
complete -c nshm-put -l peer-timeout -x -d 'Fail if the receiver is silent this long (seconds)'
complete -c nshm-put -l map -x -a 'uc\t"uncached (resource2)" wc\t"write-combining (resource2_wc)" wb\t"write-back"' -d 'For pci: how to map the BAR'
complete -c nshm-put -s q -l quiet -d 'No progress or messages, only errors'
complete -c nshm-put -l digest -x -a sha256 -d "Print the stream's SHA-256 once it is verified"
complete -c nshm-put -l json -d 'Print a JSON summary on standard output'
complete -c nshm-put -s h -l help -d 'Show the help'
complete -c nshm-put -s V -l version -d 'Show the version'
# Files are offered throughout; endpoints once there is a FILE.
complete -c nshm-put -n __nshm_put_target -a '(__nshm_endpoints)'
