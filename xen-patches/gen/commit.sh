# SPDX-License-Identifier: GPL-2.0-only
# Helper for the generators: commits everything staged in $1 with the message
# on stdin, authored like the hand-written patches.
gen_commit() {
    git -C "$1" -c user.name="rust-hv developers" -c user.email="rust-hv@localhost" \
        commit -q --author="rust-hv developers <rust-hv@localhost>" -F -
}
