# Debian packages of another suite than the machine's own (Debian 13's trixie
# on a Debian 12 machine), through an apt state of our own: the machine's
# package lists, sources and dpkg database are read, never written. The
# packages come from the same mirror the machine's own apt sources use for its
# release, read from /etc/apt at run time. Sourced by initramfs.sh.
#
#   suite_init CODENAME DIR [ARCH]  lists, debs and apt's cache go under DIR;
#                             ARCH: the packages' architecture (amd64, arm64)
#   suite_depends PKG         the package PKG's first Depends (linux-image-amd64 -> the ABI package)
#   suite_closure PKG...      the packages and their Depends, recursively
#   suite_fetch PKG...        downloads what DIR lacks; prints the .deb paths

# The URI of the machine's main Debian source for its own release: the first
# `deb` entry whose suite is the codename in /etc/os-release, in one-line
# (sources.list, *.list) or deb822 (*.sources) form.
host_mirror() {
    local codename f
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || return 1
    {
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            awk -v c="$codename" '
                $1 == "deb" {
                    i = 2
                    if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
                    if ($(i + 1) == c) print $i
                }' "$f"
        done
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] || continue
            awk -v c="$codename" '
                function flush() {
                    if (index(" " types " ", " deb ") && index(" " suites " ", " " c " ") && enabled != "no" && uris != "") {
                        split(uris, u, " ")
                        print u[1]
                    }
                    types = suites = uris = enabled = ""
                }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); next }
                {
                    key = tolower($1); $1 = ""; sub(/^ +/, "")
                    if (key == "types:") types = $0
                    else if (key == "suites:") suites = $0
                    else if (key == "uris:") uris = $0
                    else if (key == "enabled:") enabled = tolower($0)
                }
                END { flush() }' "$f"
        done
    } | head -n 1
}

suite_init() {
    local codename=$1 mirror keyring line arch=${3:-amd64}
    suite_dir=$2
    mkdir -p "$suite_dir/lists/partial" "$suite_dir/archives/partial" "$suite_dir/parts" "$suite_dir/debs"
    mirror=$(host_mirror) || mirror=""
    [ -n "$mirror" ] || { echo "suite: no Debian mirror found in /etc/apt/sources.list(.d)" >&2; return 1; }
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    line="deb ${keyring:+[signed-by=$keyring] }$mirror $codename main"
    [ "$(cat "$suite_dir/sources.list" 2>/dev/null)" = "$line" ] || echo "$line" > "$suite_dir/sources.list"
    # The machine's apt.conf.d still applies (a proxy set there is needed
    # here too), but not its sources, preferences or installed packages.
    suite_opts=(
        -o Dir::State="$suite_dir" -o Dir::State::Lists="$suite_dir/lists"
        -o Dir::State::status=/dev/null
        -o Dir::Cache="$suite_dir" -o Dir::Cache::Archives="$suite_dir/archives"
        -o Dir::Etc::SourceList="$suite_dir/sources.list" -o Dir::Etc::SourceParts="$suite_dir/parts"
        -o Dir::Etc::Preferences="$suite_dir/parts/none" -o Dir::Etc::PreferencesParts="$suite_dir/parts"
        -o APT::Architecture="$arch" -o APT::Architectures::="$arch"
        -o Acquire::Languages=none -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
        -o APT::Sandbox::User=root
    )
    # Lists are fetched once, and again only when a download fails (the
    # mirror dropped the version they name).
    ls "$suite_dir"/lists/*_Packages* > /dev/null 2>&1 || suite_update
}

suite_update() { apt-get "${suite_opts[@]}" -q update >&2; }

suite_depends() {
    apt-cache "${suite_opts[@]}" depends "$1" 2>/dev/null | awk '/^  Depends: [^<]/ { print $2; exit }'
}

suite_closure() {
    apt-cache "${suite_opts[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
        --no-breaks --no-replaces --no-enhances "$@" 2>/dev/null | grep -v '^ ' | LC_ALL=C sort -u
}

suite_fetch() {
    local uris missing
    # From an empty directory: apt leaves out of --print-uris the files it finds.
    uris=$(cd "$suite_dir/parts" && apt-get "${suite_opts[@]}" --print-uris download "$@" 2>/dev/null) \
        || { echo "suite: cannot resolve $*" >&2; return 1; }
    missing=()
    while read -r _ file _; do
        [ -f "$suite_dir/debs/$file" ] || missing+=("$file")
    done <<< "$uris"
    if [ ${#missing[@]} -gt 0 ]; then
        # Into a directory of our own, then renamed in: another work tree's
        # run (the cache is shared) must never see a half-written .deb.
        local tmp rc
        tmp=$(mktemp -d "$suite_dir/debs.XXXXXX")
        (cd "$tmp" && apt-get "${suite_opts[@]}" -q download "$@" >&2) && mv -f "$tmp"/*.deb "$suite_dir/debs/"
        rc=$?
        rm -rf "$tmp"
        [ $rc -eq 0 ] || return 1
    fi
    while read -r _ file _; do echo "$suite_dir/debs/$file"; done <<< "$uris"
}
