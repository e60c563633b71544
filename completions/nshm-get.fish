# SPDX-License-Identifier: BSD-2-Clause
# fish completion for nshm-get (vendor_completions.d/nshm-get.fish).

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

complete -c nshm-get -s s -l source -x -a '(__nshm_endpoints)' -d 'The region (default pci)'
complete -c nshm-get -s f -l force -d 'Replace existing files'
complete -c nshm-get -s p -l preserve-owner -d 'Restore owners of a set of files (as root)'
complete -c nshm-get -l max-bytes -x -d 'Take at most SIZE bytes (K, M, G suffixes)'
complete -c nshm-get -l serve -d 'A resident receiver: transfer after transfer until SIGTERM'
complete -c nshm-get -l allow-pull -x -a '(__fish_complete_directories)' -d 'With --serve: send files under ROOT when asked'
complete -c nshm-get -l pull -r -F -d 'Ask a resident receiver for PATH (beneath its ROOT)'
complete -c nshm-get -l timeout -x -d 'Give up if no sender appears (seconds)'
complete -c nshm-get -l peer-timeout -x -d 'Fail if the sender is silent this long (seconds)'
complete -c nshm-get -l map -x -a 'uc\t"uncached (resource2)" wc\t"write-combining (resource2_wc)" wb\t"write-back"' -d 'For pci: how to map the BAR'
complete -c nshm-get -s q -l quiet -d 'No progress or messages, only errors'
complete -c nshm-get -l digest -x -a sha256 -d "Print the stream's SHA-256 once it is verified"
complete -c nshm-get -l json -d 'Print a JSON summary on standard output'
complete -c nshm-get -s h -l help -d 'Show the help'
complete -c nshm-get -s V -l version -d 'Show the version'
# DEST: files and directories (fish's default).
