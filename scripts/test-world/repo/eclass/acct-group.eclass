# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# @ECLASS: acct-group.eclass
# @SUPPORTED_EAPIS: 8
# @BLURB: one system group per package (GLEP 81)
# @DESCRIPTION:
# Written for kiln's test world from GLEP 81 and the Gentoo devmanual, to
# behave as Gentoo's acct-group packages do where it matters to an image
# builder: the group (named ${PN}) is added in pkg_preinst with shadow's
# `groupadd --system`, into ROOT's files with `--prefix "${ROOT}"`, so ROOT
# must already hold etc/group (a stage3's baselayout, or what kiln gives an
# image's root); the preferred GID ACCT_GROUP_ID is used when it is free;
# a group that exists already is left alone; a sysusers.d file is installed.
#
# @CODE
# EAPI=8
# inherit acct-group
# ACCT_GROUP_ID=82
# @CODE

if [[ -z ${_KILN_ACCT_GROUP_ECLASS} ]]; then
_KILN_ACCT_GROUP_ECLASS=1

case ${EAPI} in
	8) ;;
	*) die "${ECLASS}: EAPI ${EAPI:-0} is not supported (8 only)" ;;
esac

inherit user-info

[[ ${CATEGORY} == acct-group ]] ||
	die "${ECLASS}: only packages of category acct-group may inherit it (this is ${CATEGORY})"

# @ECLASS_VARIABLE: ACCT_GROUP_NAME
# @DESCRIPTION:
# The group's name: the package's name.
ACCT_GROUP_NAME=${PN}

# @ECLASS_VARIABLE: ACCT_GROUP_ID
# @REQUIRED
# @DESCRIPTION:
# The preferred GID, or -1 for any free system GID. make.conf may override
# it with ACCT_GROUP_<NAME>_ID (upper case, - as _).

# @ECLASS_VARIABLE: ACCT_GROUP_ENFORCE_ID
# @DESCRIPTION:
# Non-empty: fail instead of taking another GID when the preferred one is
# taken or the group exists with another GID.
: "${ACCT_GROUP_ENFORCE_ID:=}"

: "${DESCRIPTION:="System group: ${ACCT_GROUP_NAME}"}"
: "${SLOT:=0}"
: "${KEYWORDS:=amd64}"
S=${WORKDIR}

# The GID after the make.conf override.
_acct_group_id() {
	local var=ACCT_GROUP_${ACCT_GROUP_NAME^^}_ID
	var=${var//-/_}
	echo "${!var:-${ACCT_GROUP_ID}}"
}

# @FUNCTION: acct-group_pkg_pretend
# @DESCRIPTION:
# Checks ACCT_GROUP_ID, and with ACCT_GROUP_ENFORCE_ID that it can be had.
acct-group_pkg_pretend() {
	local gid owner existing
	gid=$(_acct_group_id)
	[[ ${gid} =~ ^(-1|[0-9]+)$ ]] || die "ACCT_GROUP_ID='${gid}' is no GID (a number, or -1 for any)"
	[[ ${gid} == -1 || -z ${ACCT_GROUP_ENFORCE_ID} ]] && return
	owner=$(egetgroupname "${gid}")
	existing=$(egetent group "${ACCT_GROUP_NAME}")
	if [[ -n ${owner} && ${owner} != "${ACCT_GROUP_NAME}" ]]; then
		die "GID ${gid} is taken by group ${owner}; ${ACCT_GROUP_NAME} needs it"
	elif [[ -z ${owner} && -n ${existing} ]]; then
		die "group ${ACCT_GROUP_NAME} exists with another GID (${existing}); it needs ${gid}"
	fi
}

# @FUNCTION: acct-group_src_install
# @DESCRIPTION:
# Installs the group as a systemd-sysusers line.
acct-group_src_install() {
	local gid
	gid=$(_acct_group_id)
	[[ ${gid} == -1 ]] && gid=-
	insinto /usr/lib/sysusers.d
	newins - "${CATEGORY}-${ACCT_GROUP_NAME}.conf" <<<"g ${ACCT_GROUP_NAME} ${gid}"
}

# @FUNCTION: acct-group_pkg_preinst
# @DESCRIPTION:
# Adds the group to ROOT unless it is there already.
acct-group_pkg_preinst() {
	if [[ ${EUID} -ne 0 || -n ${EPREFIX} ]]; then
		einfo "Not root: the group ${ACCT_GROUP_NAME} is not added"
		return
	fi
	if egetent group "${ACCT_GROUP_NAME}" >/dev/null; then
		elog "Group ${ACCT_GROUP_NAME} exists already"
		return
	fi
	local gid args=( --system )
	gid=$(_acct_group_id)
	if [[ ${gid} != -1 ]] && ! egetent group "${gid}" >/dev/null; then
		args+=( --gid "${gid}" )
	fi
	[[ -n ${ROOT} ]] && args+=( --prefix "${ROOT}" )
	elog "Adding group ${ACCT_GROUP_NAME}"
	groupadd "${args[@]}" "${ACCT_GROUP_NAME}" || die "groupadd ${args[*]} ${ACCT_GROUP_NAME} failed"
}

fi

EXPORT_FUNCTIONS pkg_pretend src_install pkg_preinst
