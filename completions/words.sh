# completions/words.sh — the part of coffer's bash and zsh completion that
# both share (`make install` puts it in front of bash.sh and of zsh.sh).
#
# No word list is kept here: the commands, subcommands and options come
# from the coffer binary being completed, out of its own help (`coffer
# help`, `coffer help CMD`, `coffer CMD [SUB] --help`), which is printed
# from its command table, so completion always matches the binary. Only
# help is ever run. Written in the syntax bash and zsh share.

# The words that may follow "coffer [CMD [SUB]]": commands, subcommands, or
# (with $4 "-") options. $1: the binary, $2: CMD, $3: SUB (or empty).
_coffer_words()
{
	local bin=$1 cmd=$2 sub=$3 want=$4
	if [[ -z $cmd || $cmd == help ]]; then
		[[ $want == - ]] && { printf '%s\n' --help --version; return; }
		"$bin" help 2>/dev/null | awk '/^commands:/ { f = 1; next } /^$/ { f = 0 } f { print $1 }'
		return
	fi
	local usage
	usage=$("$bin" help "$cmd" 2>/dev/null | sed -n '1s/^usage: coffer //p')
	[[ -n $usage ]] || return
	if [[ $want == - ]]; then
		# the options of the usage segments of SUB (or those without a
		# subcommand), and those the options table of --help lists
		{
			printf '%s\n' "$usage" | awk -v cmd="$cmd" -v want="$sub" '{
				n = split($0, seg, / \| /)
				for (i = 1; i <= n; i++) {
					split(seg[i], w, " ")
					s = (w[2] ~ /^[a-z][a-z-]*$/) ? w[2] : ""
					if (s == want) print seg[i]
				}
			}'
			"$bin" "$cmd" ${sub:+"$sub"} --help 2>/dev/null | awk '/^options:/ { f = 1; next } f'
		} | grep -oE -- '(^|[ [|,])--?[a-zA-Z][a-z-]*' | grep -oE -- '--?[a-zA-Z][a-z-]*' | sort -u
		return
	fi
	[[ -z $sub ]] || return
	printf '%s\n' "$usage" | awk -v cmd="$cmd" '{
		n = split($0, seg, / \| /)
		for (i = 1; i <= n; i++) {
			split(seg[i], w, " ")
			if (w[1] == cmd && w[2] ~ /^[a-z][a-z-]*$/) print w[2]
		}
	}' | sort -u
}

