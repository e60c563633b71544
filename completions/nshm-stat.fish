# SPDX-License-Identifier: BSD-2-Clause
# fish completion for nshm-stat (vendor_completions.d/nshm-stat.fish).

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

complete -c nshm-stat -s w -l watch -d 'Refresh until interrupted'
complete -c nshm-stat -s i -l interval -x -d 'Time between samples (seconds)'
complete -c nshm-stat -l map -x -a 'uc\t"uncached (resource2)" wc\t"write-combining (resource2_wc)" wb\t"write-back"' -d 'For pci: how to map the BAR'
complete -c nshm-stat -l json -d 'Print one JSON object per sample'
complete -c nshm-stat -s h -l help -d 'Show the help'
complete -c nshm-stat -s V -l version -d 'Show the version'
# ENDPOINT: no files unless the word is a path.
complete -c nshm-stat -f -a '(__nshm_endpoints)'
