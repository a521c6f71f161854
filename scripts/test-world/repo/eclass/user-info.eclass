# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# @ECLASS: user-info.eclass
# @SUPPORTED_EAPIS: 8
# @BLURB: look up users and groups, in ROOT's files when ROOT is set
# @DESCRIPTION:
# Written for kiln's test world from the interface Gentoo's devmanual and
# GLEP 81 describe: the same function names and output, Linux only. With
# ROOT set (emerge --root) the lookups read ROOT/etc/passwd and
# ROOT/etc/group themselves, as getent only knows the running system; a
# missing file is an empty database. Only the pkg_* phases may call them.

if [[ -z ${_KILN_USER_INFO_ECLASS} ]]; then
_KILN_USER_INFO_ECLASS=1

case ${EAPI} in
	8) ;;
	*) die "${ECLASS}: EAPI ${EAPI:-0} is not supported (8 only)" ;;
esac

# @FUNCTION: egetent
# @USAGE: <passwd|group> <name or id>
# @DESCRIPTION:
# Prints the database line of the entry named (or numbered) KEY; fails
# when there is none.
egetent() {
	[[ $# -eq 2 ]] || die "usage: egetent <passwd|group> <name or id>"
	local db=$1 key=$2
	case ${db} in
		passwd|group) ;;
		*) die "egetent: no database '${db}' (passwd or group)" ;;
	esac
	if [[ -z ${ROOT} ]]; then
		getent "${db}" "${key}"
		return
	fi
	local file=${ROOT%/}/etc/${db} field=1
	[[ ${key} =~ ^[0-9]+$ ]] && field=3
	[[ -f ${file} ]] || return 2
	awk -F: -v k="${key}" -v f="${field}" '$f == k { print; found = 1; exit } END { exit !found }' "${file}"
}

# @FUNCTION: egetusername
# @USAGE: <uid>
# @DESCRIPTION:
# The name of the user with this UID.
egetusername() {
	[[ $# -eq 1 ]] || die "usage: egetusername <uid>"
	egetent passwd "$1" | cut -d: -f1
}

# @FUNCTION: egetgroupname
# @USAGE: <gid>
# @DESCRIPTION:
# The name of the group with this GID.
egetgroupname() {
	[[ $# -eq 1 ]] || die "usage: egetgroupname <gid>"
	egetent group "$1" | cut -d: -f1
}

# @FUNCTION: egethome
# @USAGE: <user>
# @DESCRIPTION:
# The user's home directory.
egethome() {
	[[ $# -eq 1 ]] || die "usage: egethome <user>"
	egetent passwd "$1" | cut -d: -f6
}

# @FUNCTION: egetshell
# @USAGE: <user>
# @DESCRIPTION:
# The user's login shell.
egetshell() {
	[[ $# -eq 1 ]] || die "usage: egetshell <user>"
	egetent passwd "$1" | cut -d: -f7
}

# @FUNCTION: egetcomment
# @USAGE: <user>
# @DESCRIPTION:
# The user's comment (GECOS) field.
egetcomment() {
	[[ $# -eq 1 ]] || die "usage: egetcomment <user>"
	egetent passwd "$1" | cut -d: -f5
}

# @FUNCTION: egetgroups
# @USAGE: <user>
# @DESCRIPTION:
# The user's groups, comma-separated: the primary group first, then the
# supplementary ones sorted, so that two lists compare as strings.
egetgroups() {
	[[ $# -eq 1 ]] || die "usage: egetgroups <user>"
	local user=$1 gid primary others
	gid=$(egetent passwd "${user}" | cut -d: -f4)
	[[ -n ${gid} ]] || return 1
	primary=$(egetgroupname "${gid}")
	if [[ -z ${ROOT} ]]; then
		others=$(id -G -n "${user}" | tr ' ' '\n')
	else
		others=$(awk -F: -v u="${user}" '{ n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) print $1 }' "${ROOT%/}/etc/group")
	fi
	others=$(printf '%s\n' ${others} | grep -vxF -- "${primary}" | sort | paste -sd, -)
	echo "${primary:-${gid}}${others:+,${others}}"
}

fi
