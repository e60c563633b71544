# SPDX-License-Identifier: BSD-2-Clause
# bash completion for nshm-put, nshm-get, nshm-stat and nshm-server.
# Installed once per program name into bash-completion's completionsdir;
# it can also be sourced directly.
#
# Endpoints are offered as the POSIX shm objects in /dev/shm (names only),
# "pci" and "pci:BDF" for each ivshmem device (vendor 0x1af4, device
# 0x1110) under $NSHM_SYSFS_ROOT/bus/pci/devices (default /sys).

# Candidate endpoints, one a line.
_nshm_endpoint_list()
{
	local f d v id root=${NSHM_SYSFS_ROOT:-/sys}

	for f in /dev/shm/*; do
		[[ -f $f ]] && printf '%s\n' "${f##*/}"
	done
	printf '%s\n' pci
	for d in "$root"/bus/pci/devices/*; do
		[[ -r $d/vendor && -r $d/device ]] || continue
		read -r v <"$d/vendor" 2>/dev/null || continue
		read -r id <"$d/device" 2>/dev/null || continue
		[[ ${v,,} == 0x1af4 && ${id,,} == 0x1110 ]] &&
			printf 'pci:%s\n' "${d##*/}"
	done
}

# _nshm_add_words CUR WORD...: add the WORDs that start with CUR.
_nshm_add_words()
{
	local cur=$1 w
	shift
	for w in "$@"; do
		[[ $w == "$cur"* ]] && COMPREPLY+=("$w")
	done
	return 0
}

_nshm_files()
{
	local cur=$1 IFS=$'\n'
	if declare -F _filedir >/dev/null; then
		_filedir
	else
		compopt -o filenames 2>/dev/null || :
		COMPREPLY+=($(compgen -f -- "$cur" || :))
	fi
	return 0
}

_nshm_dirs()
{
	local cur=$1 IFS=$'\n'
	if declare -F _filedir >/dev/null; then
		_filedir -d
	else
		compopt -o filenames 2>/dev/null || :
		COMPREPLY+=($(compgen -d -- "$cur" || :))
	fi
	return 0
}

_nshm_endpoints()
{
	local cur=$1 IFS=$'\n'
	if [[ $cur == */* ]]; then
		_nshm_files "$cur"
		return
	fi
	_nshm_add_words "$cur" $(_nshm_endpoint_list)
	return 0
}

_nshm()
{
	local prog=${1##*/} i w words=() cword=0 cur prev

	# Put back together the words that COMP_WORDBREAKS split at ':'
	# (pci:0000:00:04.0); '=' stays apart (--map=wc).
	for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
		w=${COMP_WORDS[i]}
		if ((i > 0 && ${#words[@]} > 0)) &&
			[[ $w == : || ${COMP_WORDS[i - 1]} == : ]]; then
			words[-1]+=$w
		else
			words+=("$w")
		fi
		((i == COMP_CWORD)) && cword=$((${#words[@]} - 1))
	done
	cur=${words[cword]}
	prev=
	((cword > 0)) && prev=${words[cword - 1]}
	if [[ $prev == = ]] && ((cword > 1)); then
		prev=${words[cword - 2]}
	elif [[ $cur == = ]]; then
		prev=${words[cword - 1]}
		cur=
	fi
	COMPREPLY=()

	local opts args
	case $prog in
	nshm-put)
		opts='-n --name -t --to -T --target --buffer --slots --chunk --timeout --peer-timeout --map --digest -q --quiet --json -h --help -V --version'
		args='-n --name -t --to -T --target --buffer --slots --chunk --timeout --peer-timeout --map'
		;;
	nshm-get)
		opts='-s --source -f --force -p --preserve-owner --max-bytes --serve --allow-pull --pull --timeout --peer-timeout --map --digest -q --quiet --json -h --help -V --version'
		args='-s --source --max-bytes --allow-pull --pull --timeout --peer-timeout --map'
		;;
	nshm-stat)
		opts='-w --watch -i --interval --map --json -h --help -V --version'
		args='-i --interval --map'
		;;
	nshm-server)
		opts='-s --size --socket -g --group --socket-mode --shm-mode -n --vectors -h --help -V --version'
		args='-s --size --socket -g --group --socket-mode --shm-mode -n --vectors'
		;;
	*)
		return 0
		;;
	esac

	# The argument of an option.
	case $prev in
	--map)
		_nshm_add_words "$cur" uc wc wb
		;;
	-s | --source)
		# nshm-server's -s is --size.
		[[ $prog == nshm-server ]] || _nshm_endpoints "$cur"
		;;
	-T | --target)
		_nshm_endpoints "$cur"
		;;
	--socket)
		_nshm_files "$cur"
		;;
	-g | --group)
		# shellcheck disable=SC2046  # one word per group
		_nshm_add_words "$cur" $(compgen -g)
		;;
	--socket-mode | --shm-mode)
		_nshm_add_words "$cur" 0660 0600 0640
		;;
	--allow-pull)
		_nshm_dirs "$cur"
		;;
	--pull)
		# A path beneath the resident's ROOT, on the other side.
		_nshm_files "$cur"
		;;
	--size)
		;;
	-n | --name | -t | --to | --buffer | --max-bytes | --vectors | --slots | --chunk | --timeout | \
		--peer-timeout | -i | --interval)
		;;
	*)
		prev=
		;;
	esac
	if [[ -n $prev ]]; then
		_nshm_trim_colons "$cur"
		return 0
	fi

	# Count the operands before this word (skipping option arguments).
	local n=0 skip= dashdash= targets=
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		[[ -z $dashdash && ( $w == -T || $w == --target ) ]] && targets=1
		if [[ -n $skip ]]; then
			skip=
			[[ $w == = ]] && skip=1
			continue
		fi
		if [[ -z $dashdash && $w == -- ]]; then
			dashdash=1
		elif [[ -z $dashdash && $w == -?* ]]; then
			[[ " $args " == *" $w "* ]] && skip=1
		else
			n=$((n + 1))
		fi
	done

	if [[ -z $dashdash && $cur == -* ]]; then
		# shellcheck disable=SC2086
		_nshm_add_words "$cur" $opts
		return 0
	fi

	case $prog in
	nshm-put)
		# FILE... TARGET: the first operand is a file; any later one
		# may be the target. With -T every operand is a file.
		_nshm_files "$cur"
		((n >= 1)) && [[ -z $targets ]] && _nshm_endpoints "$cur"
		;;
	nshm-get)
		((n == 0)) && _nshm_files "$cur"
		;;
	nshm-stat)
		((n == 0)) && _nshm_endpoints "$cur"
		;;
	nshm-server)
		# NAME: a shm object, existing or new.
		local IFS=$'\n'
		((n == 0)) && _nshm_add_words "$cur" $(_nshm_endpoint_list | grep -vE '^pci(:|$)')
		;;
	esac
	_nshm_trim_colons "$cur"
	return 0
}

# Bash replaces only the part of the word after the last ':' when ':' is in
# COMP_WORDBREAKS: drop what comes before it from the candidates.
_nshm_trim_colons()
{
	local cur=$1 pre i
	[[ $cur == *:* && $COMP_WORDBREAKS == *:* ]] || return 0
	pre=${cur%"${cur##*:}"}
	for i in "${!COMPREPLY[@]}"; do
		COMPREPLY[i]=${COMPREPLY[i]#"$pre"}
	done
	return 0
}

complete -F _nshm nshm-put nshm-get nshm-stat nshm-server
