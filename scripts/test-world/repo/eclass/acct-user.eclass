# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# @ECLASS: acct-user.eclass
# @SUPPORTED_EAPIS: 8
# @BLURB: one system user per package (GLEP 81)
# @DESCRIPTION:
# Written for kiln's test world from GLEP 81 and the Gentoo devmanual, to
# behave as Gentoo's acct-user packages do where it matters to an image
# builder:
#  - the user (named ${PN}) is added in pkg_preinst with shadow's
#    `useradd --system --no-create-home --no-user-group`, into ROOT's files
#    with `--prefix "${ROOT}"`: ROOT must hold etc/passwd and etc/group
#    already, and its groups must exist (the acct-group packages, which
#    acct-user_add_deps makes RDEPENDs);
#  - the preferred UID ACCT_USER_ID is used when it is free;
#  - the home directory (ACCT_USER_HOME, /dev/null for none) is installed
#    by the package (keepdir) and given to the user, by number when ROOT is
#    set, as ROOT's ids are not the builder's;
#  - a user that exists already is updated with `usermod` in pkg_postinst
#    (comment, home, shell, groups), which leaves shadow's backup files
#    (etc/passwd- ...) in ROOT as it does on Gentoo;
#  - a sysusers.d file describes the user.
# make.conf may override ID, COMMENT, SHELL, HOME, HOME_OWNER, HOME_PERMS and
# GROUPS with ACCT_USER_<NAME>_<VAR> (upper case, - as _; GROUPS is a space
# list there), and append groups with ACCT_USER_<NAME>_GROUPS_ADD.
#
# @CODE
# EAPI=8
# inherit acct-user
# ACCT_USER_ID=82
# ACCT_USER_GROUPS=( nginx )
# ACCT_USER_HOME=/var/lib/nginx
# acct-user_add_deps
# @CODE

if [[ -z ${_KILN_ACCT_USER_ECLASS} ]]; then
_KILN_ACCT_USER_ECLASS=1

case ${EAPI} in
	8) ;;
	*) die "${ECLASS}: EAPI ${EAPI:-0} is not supported (8 only)" ;;
esac

inherit user-info

[[ ${CATEGORY} == acct-user ]] ||
	die "${ECLASS}: only packages of category acct-user may inherit it (this is ${CATEGORY})"

# @ECLASS_VARIABLE: ACCT_USER_NAME
# @DESCRIPTION:
# The user's name: the package's name.
ACCT_USER_NAME=${PN}

# @ECLASS_VARIABLE: ACCT_USER_ID
# @REQUIRED
# @DESCRIPTION:
# The preferred UID, or -1 for any free system UID.

# @ECLASS_VARIABLE: ACCT_USER_GROUPS
# @REQUIRED
# @DESCRIPTION:
# A bash array of the user's groups: the primary group first.

# @ECLASS_VARIABLE: ACCT_USER_ENFORCE_ID
# @DESCRIPTION:
# Non-empty: fail when the preferred UID is taken or the user exists with
# another UID.
: "${ACCT_USER_ENFORCE_ID:=}"

# @ECLASS_VARIABLE: ACCT_USER_SHELL
# @DESCRIPTION:
# The login shell.
: "${ACCT_USER_SHELL:=/sbin/nologin}"

# @ECLASS_VARIABLE: ACCT_USER_HOME
# @DESCRIPTION:
# The home directory; /dev/null for none.
: "${ACCT_USER_HOME:=/dev/null}"

# @ECLASS_VARIABLE: ACCT_USER_HOME_OWNER
# @DEFAULT_UNSET
# @DESCRIPTION:
# The home directory's owner as user[:group]; the user and its primary
# group when unset.

# @ECLASS_VARIABLE: ACCT_USER_HOME_PERMS
# @DESCRIPTION:
# The home directory's mode.
: "${ACCT_USER_HOME_PERMS:=0755}"

# @ECLASS_VARIABLE: ACCT_USER_COMMENT
# @DEFAULT_UNSET
# @DESCRIPTION:
# The comment (GECOS) field; DESCRIPTION when unset.

: "${DESCRIPTION:="System user: ${ACCT_USER_NAME}"}"
: "${SLOT:=0}"
: "${KEYWORDS:=amd64}"
S=${WORKDIR}

# @FUNCTION: acct-user_add_deps
# @DESCRIPTION:
# RDEPENDs on the acct-group packages of ACCT_USER_GROUPS and on the owner
# of the home directory; call it after setting them, in global scope.
acct-user_add_deps() {
	[[ $(declare -p ACCT_USER_GROUPS 2>/dev/null) == "declare -a"* ]] ||
		die "ACCT_USER_GROUPS must be a bash array, e.g. ACCT_USER_GROUPS=( ${PN} )"
	[[ ${#ACCT_USER_GROUPS[@]} -gt 0 ]] || die "ACCT_USER_GROUPS must name at least the primary group"
	local g owner_user=${ACCT_USER_HOME_OWNER%%:*} owner_group=
	[[ ${ACCT_USER_HOME_OWNER} == *:* ]] && owner_group=${ACCT_USER_HOME_OWNER#*:}
	for g in "${ACCT_USER_GROUPS[@]}"; do
		RDEPEND+=" acct-group/${g}"
	done
	[[ -n ${owner_user} && ${owner_user} != "${ACCT_USER_NAME}" ]] && RDEPEND+=" acct-user/${owner_user}"
	[[ -n ${owner_group} ]] && ! has "${owner_group}" "${ACCT_USER_GROUPS[@]}" && RDEPEND+=" acct-group/${owner_group}"
	_KILN_ACCT_USER_DEPS=1
}

# _acct_user_get VAR: ACCT_USER_VAR after the make.conf override
# ACCT_USER_<NAME>_VAR; GROUPS as a space list with GROUPS_ADD appended.
_acct_user_get() {
	local name=${ACCT_USER_NAME^^}
	name=${name//-/_}
	local override=ACCT_USER_${name}_$1 value
	if [[ $1 == GROUPS ]]; then
		value=${!override:-${ACCT_USER_GROUPS[*]}}
		override=ACCT_USER_${name}_GROUPS_ADD
		echo "${value}${!override:+ ${!override}}"
		return
	fi
	local var=ACCT_USER_$1
	value=${!override:-${!var}}
	[[ $1 == COMMENT && -z ${value} ]] && value=${DESCRIPTION//[:,=]/;}
	echo "${value}"
}

# @FUNCTION: acct-user_pkg_pretend
# @DESCRIPTION:
# Checks the ebuild's settings, and with ACCT_USER_ENFORCE_ID that the UID
# can be had.
acct-user_pkg_pretend() {
	[[ -n ${_KILN_ACCT_USER_DEPS} ]] || die "the ebuild must call acct-user_add_deps in global scope"
	local uid owner existing
	uid=$(_acct_user_get ID)
	[[ ${uid} =~ ^(-1|[0-9]+)$ ]] || die "ACCT_USER_ID='${uid}' is no UID (a number, or -1 for any)"
	[[ ${uid} == -1 || -z ${ACCT_USER_ENFORCE_ID} ]] && return
	owner=$(egetusername "${uid}")
	existing=$(egetent passwd "${ACCT_USER_NAME}")
	if [[ -n ${owner} && ${owner} != "${ACCT_USER_NAME}" ]]; then
		die "UID ${uid} is taken by user ${owner}; ${ACCT_USER_NAME} needs it"
	elif [[ -z ${owner} && -n ${existing} ]]; then
		die "user ${ACCT_USER_NAME} exists with another UID (${existing}); it needs ${uid}"
	fi
}

# @FUNCTION: acct-user_src_install
# @DESCRIPTION:
# Installs the home directory (so the package owns it) and the user as
# systemd-sysusers lines.
acct-user_src_install() {
	local comment home uid shell groups
	comment=$(_acct_user_get COMMENT)
	[[ ${comment} == *[:,=]* ]] && die "the user's comment '${comment}' holds one of : , ="
	home=$(_acct_user_get HOME)
	uid=$(_acct_user_get ID)
	shell=$(_acct_user_get SHELL)
	read -r -a groups <<<"$(_acct_user_get GROUPS)"
	[[ ${home} != /dev/null ]] && keepdir "${home}"
	[[ ${uid} == -1 ]] && uid=-
	insinto /usr/lib/sysusers.d
	{
		printf 'u %s %s:%s "%s" %s %s\n' "${ACCT_USER_NAME}" "${uid}" "${groups[0]}" "${comment}" "${home}" "${shell}"
		local g
		for g in "${groups[@]:1}"; do
			printf 'm %s %s\n' "${ACCT_USER_NAME}" "${g}"
		done
	} | newins - "${CATEGORY}-${ACCT_USER_NAME}.conf"
}

# @FUNCTION: acct-user_pkg_preinst
# @DESCRIPTION:
# Adds the user to ROOT unless it is there, and gives it its home directory.
acct-user_pkg_preinst() {
	unset _KILN_ACCT_USER_ADDED
	if [[ ${EUID} -ne 0 || -n ${EPREFIX} ]]; then
		einfo "Not root: the user ${ACCT_USER_NAME} is not added"
		return
	fi
	local uid home groups extra args
	uid=$(_acct_user_get ID)
	home=$(_acct_user_get HOME)
	read -r -a groups <<<"$(_acct_user_get GROUPS)"
	if egetent passwd "${ACCT_USER_NAME}" >/dev/null; then
		elog "User ${ACCT_USER_NAME} exists already"
	else
		extra=${groups[*]:1}
		args=(
			--system --no-create-home --no-user-group
			--comment "$(_acct_user_get COMMENT)"
			--home-dir "${home}"
			--shell "$(_acct_user_get SHELL)"
			--gid "${groups[0]}"
			--groups "${extra// /,}"
		)
		if [[ ${uid} != -1 ]] && ! egetent passwd "${uid}" >/dev/null; then
			args+=( --uid "${uid}" )
		fi
		[[ -n ${ROOT} ]] && args+=( --prefix "${ROOT}" )
		elog "Adding user ${ACCT_USER_NAME}"
		useradd "${args[@]}" "${ACCT_USER_NAME}" || die "useradd ${args[*]} ${ACCT_USER_NAME} failed"
		_KILN_ACCT_USER_ADDED=1
	fi
	[[ ${home} == /dev/null ]] && return
	[[ -d ${ED%/}${home} ]] || die "the home directory ${home} is not in the image to install (INSTALL_MASK?)"
	local owner user group
	owner=$(_acct_user_get HOME_OWNER)
	user=${owner%%:*} group=
	[[ ${owner} == *:* ]] && group=${owner#*:}
	if [[ -z ${owner} ]]; then
		user=${ACCT_USER_NAME} group=${groups[0]}
	fi
	if [[ -n ${ROOT} ]]; then
		# The builder's database does not know ROOT's users: use the numbers.
		local u= g=
		[[ -n ${user} ]] && u=$(egetent passwd "${user}" | cut -d: -f3)
		if [[ -n ${group} ]]; then
			g=$(egetent group "${group}" | cut -d: -f3)
		elif [[ -n ${user} ]]; then
			g=$(egetent passwd "${user}" | cut -d: -f4)
		fi
		owner=${u}:${g}
	else
		owner=${user}${group:+:${group}}
	fi
	fowners "${owner}" "${home}"
	fperms "$(_acct_user_get HOME_PERMS)" "${home}"
}

# @FUNCTION: acct-user_pkg_postinst
# @DESCRIPTION:
# Brings a user that existed before up to date with the package.
acct-user_pkg_postinst() {
	[[ -n ${_KILN_ACCT_USER_ADDED} ]] && return
	[[ ${EUID} -ne 0 || -n ${EPREFIX} ]] && return
	local groups args
	read -r -a groups <<<"$(_acct_user_get GROUPS)"
	local extra=${groups[*]:1}
	args=(
		--comment "$(_acct_user_get COMMENT)"
		--home "$(_acct_user_get HOME)"
		--shell "$(_acct_user_get SHELL)"
		--gid "${groups[0]}"
		--groups "${extra// /,}"
	)
	[[ -n ${ROOT} ]] && args+=( --prefix "${ROOT}" )
	elog "Updating user ${ACCT_USER_NAME}"
	usermod "${args[@]}" "${ACCT_USER_NAME}" || die "usermod ${args[*]} ${ACCT_USER_NAME} failed"
}

# @FUNCTION: acct-user_pkg_prerm
# @DESCRIPTION:
# Locks the account when the package goes (not when it is replaced).
acct-user_pkg_prerm() {
	[[ -n ${REPLACED_BY_VERSION} ]] && return
	[[ ${EUID} -ne 0 || -n ${EPREFIX} ]] && return
	[[ $(_acct_user_get ID) == 0 ]] && return
	egetent passwd "${ACCT_USER_NAME}" >/dev/null || return 0
	local args=( --lock --expiredate 1 --shell /sbin/nologin )
	[[ -n ${ROOT} ]] && args+=( --prefix "${ROOT}" )
	elog "Locking user ${ACCT_USER_NAME}"
	usermod "${args[@]}" "${ACCT_USER_NAME}" || die "usermod ${args[*]} ${ACCT_USER_NAME} failed"
}

fi

EXPORT_FUNCTIONS pkg_pretend src_install pkg_preinst pkg_postinst pkg_prerm
