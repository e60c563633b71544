# SPDX-License-Identifier: BSD-2-Clause
# fish completion for nshm-server (vendor_completions.d/nshm-server.fish).

complete -c nshm-server -s s -l size -x -d 'Size of the memory when created (a power of two)'
complete -c nshm-server -l socket -r -F -d 'Listen on this path'
complete -c nshm-server -s g -l group -x -a '(__fish_complete_groups)' -d 'Group of the socket and the memory'
complete -c nshm-server -l socket-mode -x -a '0660 0600 0640' -d 'Mode of the socket (octal)'
complete -c nshm-server -l shm-mode -x -a '0660 0600 0640' -d 'Mode of the memory (octal)'
complete -c nshm-server -s n -l vectors -x -a '1 2 3 4 5 6 7 8' -d 'Interrupt vectors per client'
complete -c nshm-server -s h -l help -d 'Show the help'
complete -c nshm-server -s V -l version -d 'Show the version'
# NAME: a shm object, existing or new.
complete -c nshm-server -f -a '(for f in /dev/shm/*; test -f $f; and printf "%s\tshm object\n" (path basename -- $f); end)'
